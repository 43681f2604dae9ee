package lang

import (
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/satchelcm/satchel/internal/schema"
)

// Config is a parsed config repository. It is independent of any node: Evaluate and Check
// compile it for one node at a time, and are safe to call concurrently.
type Config struct {
	// Dir is the repository directory as given to Load.
	Dir string

	types     map[string]*schema.Type
	variables map[string]*variable
	varOrder  []string
	locals    []*hcl.Attribute
	inventory *inventory
	nodes     []*nodeBlock
	roles     map[string]*role

	files     *sourceFiles
	templates map[string]parsedTemplate // guarded by files.mu
	bodies    []hcl.Body                // the parsed files, for FactReferences
	overrides map[string]cty.Value      // --var, see SetVars
	secrets   SecretSource              // secret(), see SetSecrets
}

// variable is a `variable "NAME" {}` block.
type variable struct {
	name        string
	typ         cty.Type
	def         cty.Value // cty.NilVal when there is no default
	sensitive   bool
	description string
	declRange   hcl.Range
}

// nodeBlock is a `node "PATTERN" {}` block: the machines it selects and what they get.
type nodeBlock struct {
	pattern   string
	where     hcl.Expression // nil: no fact condition
	vars      hcl.Expression // nil: no variables
	roles     []*roleUse
	resources []*resourceBlock
	declRange hcl.Range
}

// role is a `role "NAME" {}` block: a parameterised group of resources.
type role struct {
	name        string
	description string
	params      map[string]*param
	roles       []*roleUse
	resources   []*resourceBlock
	declRange   hcl.Range
}

// param is a `param "NAME" {}` block inside a role.
type param struct {
	name        string
	typ         cty.Type
	def         cty.Value // cty.NilVal when required
	description string
	declRange   hcl.Range
}

// roleUse is a `role "NAME" { PARAM = … }` block inside a node or a role.
type roleUse struct {
	name      string
	when      hcl.Expression
	args      map[string]*hcl.Attribute
	declRange hcl.Range
	nameRange hcl.Range
}

// resourceBlock is a `TYPE "NAME" {}` block inside a node or a role.
type resourceBlock struct {
	typ       *schema.Type
	name      string
	attrs     map[string]*hcl.Attribute // the type's own attributes
	forEach   hcl.Expression
	when      hcl.Expression
	refs      []*reference
	declRange hcl.Range
	typeRange hcl.Range
}

// reference is one entry of require, before, notify or subscribe.
type reference struct {
	kind    string // "require", "before", "notify" or "subscribe"
	base    string // TYPE.NAME
	typ     string
	key     *string // for TYPE.NAME["KEY"]
	srcText string
	rng     hcl.Range
}

// Meta-arguments: attributes of a resource block that are about the block, not the resource.
const (
	metaForEach   = "for_each"
	metaWhen      = "when"
	metaRequire   = "require"
	metaBefore    = "before"
	metaNotify    = "notify"
	metaSubscribe = "subscribe"
)

var referenceKinds = []string{metaRequire, metaBefore, metaNotify, metaSubscribe}

// sourceFiles holds every file the configuration reads (HCL, templates, files, the
// inventory), for diagnostics snippets and so that each is read and hashed only once.
type sourceFiles struct {
	mu       sync.Mutex
	snippets map[string][]byte // by the file name used in ranges
	files    map[string]fileData
	read     map[string]string // text files read: path relative to the repository -> sha256
}

type fileData struct {
	data   []byte
	size   int64
	sha256 string
	err    error
}
