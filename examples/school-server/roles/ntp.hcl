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
    notify  = [exec.restart_timesyncd]
  }

  exec "restart_timesyncd" {
    command      = "systemctl restart systemd-timesyncd"
    onlyif       = "test -d /run/systemd/system && systemctl is-active --quiet systemd-timesyncd"
    refresh_only = true
  }
}
