# A school server, as a ministry's central office would describe it.
#
# Every school runs the same roles; what differs per school (its name, language, network
# and which sites its web filter lets through) comes from inventory.csv, the spreadsheet
# the office already keeps.

inventory {
  source = "inventory.csv"
  key    = "hostname"
}

variable "school_name" {
  type        = string
  description = "The school's name, shown on the login banner and the content portal."
}

variable "language" {
  type    = string
  default = "en"
}

variable "lan_prefix" {
  type        = string
  description = "The school LAN, e.g. 10.12.0.0/24: the web filter serves only this network."
}

variable "allowed_sites" {
  type        = list(string)
  default     = []
  description = "Sites the web filter lets through for this school (semicolon-separated in the inventory)."
}

variable "wifi_passphrase" {
  type        = string
  sensitive   = true
  description = "Staff wifi passphrase; never shown in plans, diffs or reports."
}

variable "manage_system" {
  type        = bool
  default     = true
  description = "Install packages, run services, create the accounts and set the hostname. false prepares only the files, for instance into an image directory that has no Debian in it yet (make example does)."
}

variable "domain" {
  type    = string
  default = "schools.example.org"
}

variable "teacher_password_hash" {
  type        = string
  sensitive   = true
  default     = "!"
  description = "crypt(3) hash of the teacher account's password, as mkpasswd makes; \"!\" keeps the account locked (log in with a key)."
}

variable "ntp_servers" {
  type    = list(string)
  default = ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"]
}

locals {
  # Sites every school may reach, whatever its own list says.
  common_sites = ["ministry.example.org", "wikipedia.org", "kolibri.example.org"]
  sites        = distinct(concat(local.common_sites, var.allowed_sites))
}

# Every machine gets the base role, and, unless only files are wanted, its system side.
node "*" {
  role "base" {
    banner = "${var.school_name} - school server ${node.name}"
  }
  role "ntp" {
    servers = var.ntp_servers
  }
  role "base_system" {
    when = var.manage_system
  }
}

# School servers (Debian family) also filter the web and serve the content library.
node "school-*" {
  where = fact.os.family == "debian"

  role "web_filter" {
    allowed_sites = local.sites
    lan           = var.lan_prefix
  }
  role "content" {
    languages = distinct(["en", var.language])
  }
  role "web_filter_system" {
    when = var.manage_system
  }
}
