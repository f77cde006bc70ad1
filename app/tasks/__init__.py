"""RQ jobs. Each takes ids (always the tenant id where there is one) and is safe to run twice."""
