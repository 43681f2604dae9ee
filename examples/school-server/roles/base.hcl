role "base" {
  description = "What every machine gets: a login banner, a managed-by marker, kernel settings."

  param "banner" {
    type = string
  }

  file "motd" {
    path    = "/etc/motd"
    content = template("motd.tmpl", { banner = param.banner })
    mode    = "0644"
  }

  directory "satchel_etc" {
    path = "/etc/satchel"
    mode = "0755"
  }

  file "managed_marker" {
    path    = "/etc/satchel/managed-by"
    content = "This machine is configured by Satchel. Local changes to managed files are undone.\n"
  }

  directory "sysctl_d" {
    path = "/etc/sysctl.d"
  }

  file "sysctl_school" {
    path    = "/etc/sysctl.d/60-school.conf"
    content = "# managed by satchel\nnet.ipv4.ip_forward = 0\nvm.swappiness = 10\n"
  }
}
