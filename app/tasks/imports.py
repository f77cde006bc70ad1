"""Client-base imports, run by the worker a batch at a time."""

from app.extensions import db
from app.imports import services
from app.models import ImportJob
from app.tenancy import tenant_scope


def run_import(tenant_id: int, import_id: int) -> bool:
    """Import the rows not yet committed; running it again resumes, never duplicates."""
    with tenant_scope(tenant_id) as tenant:
        job = db.session.get(ImportJob, import_id)
        if job is None or job.tenant_id != tenant_id:
            return False
        return services.run_import(tenant, job)
