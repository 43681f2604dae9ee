# The system side of a school server: packages, services, accounts, the machine's name and a
# scheduled job. These roles only refer to the file resources of the other roles (before,
# subscribe), so a node without them (var.manage_system = false) still has a complete catalog.

role "base_system" {
  description = "The machine itself: its name, the teacher account, time synchronisation, a nightly job."

  hostname "this" {
    name   = node.name
    domain = var.domain
  }

  group "teachers" {}

  user "teacher" {
    comment  = "Teacher, ${var.school_name}"
    group    = "teachers"
    shell    = "/bin/bash"
    password = var.teacher_password_hash
  }

  package "systemd-timesyncd" {
    before = [file.timesyncd]
  }

  # Restarted when the NTP servers change (if it runs: it does not, in a container).
  service "systemd-timesyncd" {
    enabled   = true
    subscribe = [file.timesyncd]
  }

  # Schools switch their servers off at night: a missed run happens at the next boot.
  timer "content_inventory" {
    description = "Nightly inventory of the content library"
    on_calendar = "*-*-* 02:30"
    command     = "find /srv/content -type f > /var/log/content-inventory.txt"
  }
}

role "web_filter_system" {
  description = "squid itself: installed before its configuration, reloaded when that changes."

  package "squid" {
    before = [file.squid_conf, file.allowed_sites]
  }

  service "squid" {
    running    = true
    enabled    = true
    on_refresh = "reload"
    subscribe  = [file.squid_conf, file.allowed_sites]
  }
}
