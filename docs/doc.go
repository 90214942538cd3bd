// Package docs holds hearsay's operator and reader documentation as
// Markdown (architecture.md, compatibility.md, operations.md) and a test
// that keeps every reference in the repository pointing at a file inside it.
package docs
