"""The Kubernetes API server of kubelite (aiohttp): REST + watch over etcd, in Kubernetes' wire format."""
