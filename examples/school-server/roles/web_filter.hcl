role "web_filter" {
  description = "A squid proxy that lets the school LAN reach an allow-list of sites."

  param "allowed_sites" {
    type = list(string)
  }
  param "lan" {
    type = string
  }
  param "port" {
    type    = number
    default = 3128
  }

  directory "squid" {
    path = "/etc/squid"
  }

  file "allowed_sites" {
    path    = "/etc/squid/allowed-sites.txt"
    content = join("\n", concat(sort(param.allowed_sites), [""]))
  }

  file "squid_conf" {
    path    = "/etc/squid/squid.conf"
    mode    = "0644"
    content = template("squid.conf.tmpl", { lan = param.lan, port = param.port })
  }

  directory "school_etc" {
    path = "/etc/school"
  }

  file "wifi" {
    path    = "/etc/school/staff-wifi.conf"
    mode    = "0600"
    content = "ssid=${node.name}-staff\npassphrase=${var.wifi_passphrase}\n"
  }
}
