"""The owner's import of an existing client base: upload, map, start, watch, download refusals."""

from flask import Response, flash, g, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.htmx import redirect_to, render
from app.imports import bp, forms, services
from app.imports.reading import FIELD_LABELS, IMPORT_FIELDS, UnreadableFile
from app.imports.rows import describe_reason
from app.models import ImportJob, ImportMode
from app.policy import requires
from app.tenancy import get_for_tenant_or_404


@bp.context_processor
def import_labels() -> dict:
    return {
        "import_fields": IMPORT_FIELDS,
        "field_labels": FIELD_LABELS,
        "status_labels": services.STATUS_LABELS,
        "mode_labels": services.MODE_LABELS,
        "describe_reason": describe_reason,
    }


@bp.route("/imports")
@requires("clients.import")
def index():
    return render("imports/index.html", imports=services.list_imports(g.tenant))


@bp.route("/imports/new", methods=["GET", "POST"])
@requires("clients.import")
def new():
    form = forms.UploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            job = services.store_upload(g.tenant, current_user, upload.filename, upload.read())
        except UnreadableFile as error:
            form.file.errors = [*form.file.errors, str(error)]
        else:
            return redirect_to(url_for("imports.mapping", import_id=job.id))
    return render(
        "imports/new.html",
        http_status=422 if form.errors else 200,
        form=form,
        max_megabytes=forms.upload_limit_megabytes(),
    )


@bp.route("/imports/<int:import_id>/mapping", methods=["GET", "POST"])
@requires("clients.import")
def mapping(import_id: int):
    job = get_for_tenant_or_404(ImportJob, import_id)
    if job.status not in services.MAPPABLE:
        flash(_("This import has started; its columns can no longer change."), "error")
        return redirect_to(url_for("imports.show", import_id=job.id))
    form = forms.MappingForm(
        job.headers,
        services.account_managers(g.tenant),
        data=forms.MappingForm.initial_data(job.mapping, job.mode, job.default_account_manager_id),
    )
    if form.validate_on_submit():
        services.save_mapping(
            job, form.mapping, ImportMode(form.mode.data), form.default_account_manager_id
        )
        return redirect_to(url_for("imports.show", import_id=job.id))
    return render(
        "imports/mapping.html",
        http_status=422 if form.errors else 200,
        job=job,
        form=form,
        preview=services.preview_rows(job),
    )


@bp.route("/imports/<int:import_id>/start", methods=["POST"])
@requires("clients.import")
def start(import_id: int):
    job = get_for_tenant_or_404(ImportJob, import_id)
    try:
        services.start_import(job)
    except services.ImportStateError as error:
        flash(str(error), "error")
    return redirect_to(url_for("imports.show", import_id=job.id))


@bp.route("/imports/<int:import_id>")
@requires("clients.import")
def show(import_id: int):
    return _status(import_id)


@bp.route("/imports/<int:import_id>/progress")
@requires("clients.import")
def progress(import_id: int):
    return _status(import_id)


def _status(import_id: int) -> Response:
    """The import's page, or just its status card for htmx polling."""
    job = get_for_tenant_or_404(ImportJob, import_id)
    return render(
        "imports/show.html",
        "imports/_status.html",
        job=job,
        rejections=services.first_rejections(job) if job.finished and job.rows_rejected else [],
    )


@bp.route("/imports/<int:import_id>/rejected.csv")
@requires("clients.import")
def rejected_report(import_id: int):
    job = get_for_tenant_or_404(ImportJob, import_id)
    return Response(
        services.rejected_rows_csv(job),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="rejected-rows-{job.id}.csv"'},
    )
