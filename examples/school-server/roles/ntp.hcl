role "ntp" {
  description = "Time from the ministry's NTP servers (systemd-timesyncd)."

  param "servers" {
    type = list(string)
  }

  directory "timesyncd_d" {
    path = "/etc/systemd/timesyncd.conf.d"
  }

  file "timesyncd" {
    path    = "/etc/systemd/timesyncd.conf.d/school.conf"
    content = "[Time]\nNTP=${join(" ", param.servers)}\n"
  }
}
