// Package doccheck holds a test that compiles every ```go block of README.md
// and docs/*.md against the module's packages, so a renamed or removed name
// cannot stay in the documentation. It has no code of its own.
package doccheck
