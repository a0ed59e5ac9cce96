// Package api is Keel's wire contract: the request and response bodies of
// every REST endpoint, with the JSON names and the documentation and
// validation tags the OpenAPI document is generated from, and Client, the
// one Go client over them that the CLI, the system tests and keelbench use.
//
// These types are the public contract, not the database's: the read model
// (adapters/postgres) has row types of its own, and adapters/httpapi converts
// rows into these. Changing a field here changes the API; keep it
// compatible (add optional fields, never rename or repurpose one).
//
// It imports only the standard library, so that any Go program can talk to
// Keel without pulling in the control plane.
package api
