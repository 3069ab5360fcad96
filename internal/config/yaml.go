package config

import (
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// The helpers below let fusebox's other YAML files (workflow definitions)
// be read as the configuration file is: one document with positions, every
// problem a Problem, fields named by paths such as steps[1].env.

// ParseYAML parses data into the body of its one document (nil if it holds
// none); a syntax error, a second document or a parser panic is a Problem
// placed where it is.
func ParseYAML(file string, data []byte) (ast.Node, []Problem) { return parseYAML(file, data) }

// NodePos returns where n starts (the first key of a block mapping).
func NodePos(n ast.Node) *token.Position { return pos(n) }

// ScalarValue returns the text of a scalar node: the value of a string, the
// source text of a number or boolean; false for anything else.
func ScalarValue(n ast.Node) (string, bool) { return scalarValue(n) }

// DescribeNode names what a node is, for "got ..." in a message: "a list",
// "null", a quoted string, a number.
func DescribeNode(n ast.Node) string { return describe(n) }

// ParentPath returns hosts[1] for hosts[1].tls, hosts for hosts[1], and ""
// for a top-level field.
func ParentPath(p string) string { return parentPath(p) }

// JoinPath appends a key to a field path.
func JoinPath(parent, key string) string { return joinPath(parent, key) }
