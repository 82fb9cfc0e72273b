"""L2 views for downstream tools: InferEdgeLab, worker summaries, agent manifests, accuracy attach, compare."""
