// Package schema describes resource types as data: their attributes, the type of each value,
// defaults, allowed values and one-line documentation.
//
// The resource implementations (package resource) derive a Type from their own Go struct tags,
// so the schema can never drift from the code. The configuration language checks attributes
// against it at check time, and `satchel types` and the user guide print it. The package
// depends on nothing else in Satchel, which is what lets the language validate resources
// without importing the code that applies them.
//
// # Value types
//
// An attribute's Type is one of string, number, bool, list(string) or map(string). Its Format
// refines a string: an absolute path, an octal file mode, a duration, a regular expression, a
// user or group name or number, or a file under the repository's files/ directory (a Source,
// which the language resolves to its path, size and SHA-256). Enum lists the allowed values.
package schema
