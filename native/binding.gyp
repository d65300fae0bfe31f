{
  "targets": [
    {
      "target_name": "memstore_mmap",
      "sources": ["mmap.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "memstore_claims",
      "sources": ["claims.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "memstore_heap",
      "sources": ["heap.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
