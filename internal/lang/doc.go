// Package lang is Satchel's configuration language: HCL files in a config repository,
// compiled for one node at a time into a catalog (package catalog).
//
// # Model
//
// Load parses a repository once, for any node: every .hcl file (outside files/ and
// templates/), the inventory CSV, and the blocks they declare — variables, locals, node
// blocks (machines selected by name glob and a where condition on facts), roles (reusable,
// parameterised groups of resources) and resources. What can be checked without a node is
// checked there: block structure, attribute names against each type's schema (package
// schema; the language never imports the code that applies resources), role parameters,
// the syntax of references.
//
// Evaluate compiles the repository for one node, given its name and facts:
//
//  1. variables: declared defaults, then the vars of every matching node block, then the
//     node's inventory row (highest precedence), converted to the declared types;
//  2. locals, in dependency order;
//  3. the roles the matching node blocks include (recursively, each once, parameters
//     evaluated in the includer's scope) and their resources, with when and for_each;
//  4. every attribute converted to its schema type and validated (formats, enums, the type's
//     own cross-attribute check), defaults filled in, source files hashed;
//  5. edges: require, before, notify and subscribe resolved to addresses, plus automatic
//     edges to the resource managing a path's nearest ancestor; duplicate addresses, two
//     owners of one path and dependency cycles are errors.
//
// Evaluation is deterministic and has no side effects: no clock, no network, no shell.
// Functions read only the repository (file(), template(), source), through os.Root, so no
// path or symlink can lead outside it. Sensitivity is a cty mark: it flows through every
// expression, template and function, and the attributes it reaches are listed as sensitive
// in the catalog.
//
// Check does the same and returns every problem without building a catalog. Without facts,
// facts are unknown: expressions over them are checked as far as types allow, conditions on
// them count as true (without holding complementary branches against each other), and a
// for_each over them stands for any instances. This is how `satchel check` validates a
// configuration for every node of the inventory before anything ships.
//
// Every problem is an hcl.Diagnostic with a source range (file:line:column);
// WriteDiagnostics prints them with the source line underlined.
package lang
