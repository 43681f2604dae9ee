role "content" {
  description = "The offline content library: a portal page and a folder per language."

  param "languages" {
    type = list(string)
  }

  directory "srv" {
    path = "/srv"
  }

  directory "content" {
    path  = "/srv/content"
    purge = true # nothing unmanaged accumulates in the library
  }

  directory "language" {
    for_each = toset(param.languages)
    path     = "/srv/content/${each.key}"
  }

  file "welcome" {
    for_each = toset(param.languages)
    path     = "/srv/content/${each.key}/welcome.txt"
    source   = "content/welcome-${each.key}.txt"
  }

  file "portal" {
    path    = "/srv/content/index.html"
    content = template("index.html.tmpl", { languages = param.languages })
  }

  file "logo" {
    path   = "/srv/content/logo.png"
    source = "content/logo.png"
  }

  exec "content_index" {
    command = "ls -1 $SATCHEL_ROOT/srv/content > $SATCHEL_ROOT/srv/content/.index"
    creates = "/srv/content/.index"
    require = [file.portal, file.logo]
  }
}
