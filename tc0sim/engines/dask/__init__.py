"""The MPFR engine on a Dask distributed cluster (``DASK``, named ``mpfr-dask``): values on the
wire (``wire.py``), what runs on a worker (``worker.py``), the client's view of the cluster and
its task feeder (``cluster.py``), the run of one evaluation (``engine.py``)."""

from tc0sim.engines.dask.cluster import ClusterStartError, local_cluster
from tc0sim.engines.dask.engine import DASK, LOCAL_WORKER_BYTES, DaskRun

__all__ = ["DASK", "LOCAL_WORKER_BYTES", "ClusterStartError", "DaskRun", "local_cluster"]
