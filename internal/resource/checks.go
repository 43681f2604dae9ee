package resource

import "github.com/satchelcm/satchel/internal/schema"

// requireWhenPresent makes attr required unless ensure is "absent".
func requireWhenPresent(attr, detail string) func(schema.Values) []*schema.AttrError {
	return func(v schema.Values) []*schema.AttrError {
		if v["ensure"] == "absent" {
			return nil
		}
		if val, ok := v[attr]; ok && val != "" {
			return nil
		}
		return []*schema.AttrError{{Attr: attr, Summary: "Missing " + attr, Detail: detail}}
	}
}
