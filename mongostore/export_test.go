package mongostore

// The store's filters, documents and options, so that benchmarks can issue
// the very same driver calls as a floor.
var (
	CreateFilter   = createFilter
	LiveFilter     = liveFilter
	UpdateFilter   = updateFilter
	NewDoc         = newDoc
	TouchUpdate    = touchUpdate
	Upsert         = upsert
	LoadProjection = loadProjection
)

// Record is the decoded document Load reads.
type Record = record
