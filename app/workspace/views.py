"""Workspace settings, the team page, and switching between workspaces."""

from flask import abort, flash, g, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app import clock
from app.extensions import db, limiter
from app.htmx import redirect_to, render
from app.models import Invitation, Membership, Role, Stage
from app.policy import requires
from app.tenancy import active_memberships, get_for_tenant_or_404
from app.workspace import bp, regions, services, timezones
from app.workspace import handover as handover_service
from app.workspace.forms import (
    InviteForm,
    NewWorkspaceForm,
    RoleForm,
    RulesForm,
    SettingsForm,
    StageForm,
)


@bp.route("/settings", methods=["GET", "POST"])
@requires("workspace.settings")
def settings():
    from app.radar.alerts import JUNK_MIN_JUDGED

    form = SettingsForm(obj=g.tenant)
    form.country.choices = regions.country_names(str(get_locale()))
    if form.validate_on_submit():
        services.update_settings(g.tenant, form.data)
        flash(_("Settings saved."), "success")
        return redirect_to(url_for("workspace.settings"))
    return render(
        "workspace/settings.html",
        http_status=422 if form.errors else 200,
        form=form,
        timezones=timezones.choices(str(get_locale()), clock.now()),
        days_min_judged=JUNK_MIN_JUDGED,
    )


def _inviter_key() -> str:
    return f"inviter:{getattr(current_user, 'id', None)}"


def _workspace_key() -> str:
    # The session's workspace: the rate limit is checked before g.tenant is loaded.
    return f"workspace:{session.get('tenant_id')}"


# Invitation emails go to any address someone types: sent and resent together, at most
# 10 an hour by one person and 20 an hour from one workspace, so Conveyor is no relay.
invitations_by_inviter = limiter.shared_limit(
    "10/hour", scope="invitations-by-inviter", key_func=_inviter_key
)
invitations_by_workspace = limiter.shared_limit(
    "20/hour", scope="invitations-by-workspace", key_func=_workspace_key
)


def _team_page(invite_form: InviteForm, status: int = 200):
    members = services.members(g.tenant)
    return render(
        "workspace/team.html",
        "workspace/_team.html",
        http_status=status,
        invite_form=invite_form,
        members=members,
        # Each member's picker opens on their current role.
        role_forms={m.id: RoleForm(formdata=None, data={"role": m.role.value}) for m in members},
        invitations=services.pending_invitations(g.tenant),
    )


@bp.route("/team", methods=["GET"])
@requires("team.manage")
def team():
    return _team_page(InviteForm())


@bp.route("/team/invitations", methods=["POST"])
@invitations_by_inviter
@invitations_by_workspace
@requires("team.manage")
def invite():
    form = InviteForm()
    if form.validate_on_submit():
        try:
            services.invite(g.tenant, current_user, form.email.data, Role(form.role.data))
        except services.WorkspaceError as error:
            form.email.errors = [*form.email.errors, str(error)]
        else:
            flash(_("Invitation sent to %(email)s.", email=form.email.data), "success")
            return redirect_to(url_for("workspace.team"))
    return _team_page(form, status=422)


@bp.route("/team/invitations/<int:invitation_id>/resend", methods=["POST"])
@invitations_by_inviter
@invitations_by_workspace
@requires("team.manage")
def resend_invitation(invitation_id: int):
    invitation = get_for_tenant_or_404(Invitation, invitation_id)
    if invitation.pending:
        services.resend_invitation(invitation)
        flash(_("Invitation sent again to %(email)s.", email=invitation.email), "success")
    return redirect_to(url_for("workspace.team"))


@bp.route("/team/invitations/<int:invitation_id>/revoke", methods=["POST"])
@requires("team.manage")
def revoke_invitation(invitation_id: int):
    invitation = get_for_tenant_or_404(Invitation, invitation_id)
    services.revoke_invitation(invitation)
    flash(_("Invitation to %(email)s withdrawn.", email=invitation.email), "info")
    return redirect_to(url_for("workspace.team"))


def _member_action(membership_id: int, action) -> object:
    membership = get_for_tenant_or_404(Membership, membership_id)
    try:
        action(membership)
    except services.WorkspaceError as error:
        flash(str(error), "error")
    return redirect_to(url_for("workspace.team"))


@bp.route("/team/members/<int:membership_id>/deactivate", methods=["POST"])
@requires("team.manage")
def deactivate_member(membership_id: int):
    def deactivate(membership):
        services.deactivate_member(g.tenant, membership)
        flash(_("%(name)s can no longer sign in here.", name=membership.user.name), "info")

    return _member_action(membership_id, deactivate)


@bp.route("/team/members/<int:membership_id>/reactivate", methods=["POST"])
@requires("team.manage")
def reactivate_member(membership_id: int):
    def reactivate(membership):
        services.reactivate_member(membership)
        flash(_("%(name)s is active again.", name=membership.user.name), "success")

    return _member_action(membership_id, reactivate)


@bp.route("/team/members/<int:membership_id>/role", methods=["POST"])
@requires("team.manage")
def change_role(membership_id: int):
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)

    def change(membership):
        services.change_role(g.tenant, membership, Role(form.role.data))
        flash(_("Role of %(name)s changed.", name=membership.user.name), "success")

    return _member_action(membership_id, change)


@bp.route("/workspaces/<int:tenant_id>/switch", methods=["POST"])
@login_required
def switch(tenant_id: int):
    """Work in another workspace where the user has an active seat (404 otherwise)."""
    if not any(m.tenant_id == tenant_id for m in active_memberships(current_user.id)):
        abort(404)
    session["tenant_id"] = tenant_id
    current_user.last_tenant_id = tenant_id
    db.session.commit()
    return redirect_to(url_for("main.dashboard"))


@bp.route("/workspaces/new", methods=["GET", "POST"])
@login_required
def new_workspace():
    form = NewWorkspaceForm()
    if form.validate_on_submit():
        tenant = services.create_workspace(
            form.name.data, current_user, language=g.tenant.language if g.tenant else "en"
        )
        db.session.commit()
        session["tenant_id"] = tenant.id
        flash(_("Workspace %(name)s created.", name=tenant.name), "success")
        return redirect_to(url_for("main.dashboard"))
    return render("workspace/new.html", form=form)


@bp.route("/rules", methods=["GET", "POST"])
@requires("rules.manage")
def rules():
    form = RulesForm(obj=g.tenant)
    if form.validate_on_submit():
        services.update_rules(g.tenant, form.data)
        flash(_("Rules saved."), "success")
        return redirect_to(url_for("workspace.rules"))
    return render(
        "workspace/rules.html",
        http_status=422 if form.errors else 200,
        form=form,
        stages=services.stage_list(g.tenant),
    )


@bp.route("/rules/stages/<int:stage_id>", methods=["POST"])
@requires("rules.manage")
def update_stage(stage_id: int):
    stage = get_for_tenant_or_404(Stage, stage_id)
    form = StageForm()
    if not form.validate_on_submit():
        flash(_("A stage needs a name and a rotting threshold of 1 to 365 days."), "error")
    else:
        try:
            services.update_stage(g.tenant, stage, form.name.data, form.rot_days.data)
        except services.WorkspaceError as error:
            flash(str(error), "error")
        else:
            flash(_("Stage saved."), "success")
    return redirect_to(url_for("workspace.rules"))


@bp.route("/rules/stages/<int:stage_id>/move", methods=["POST"])
@requires("rules.manage")
def move_stage(stage_id: int):
    stage = get_for_tenant_or_404(Stage, stage_id)
    services.move_stage(g.tenant, stage, -1 if request.form.get("direction") == "up" else 1)
    return redirect_to(url_for("workspace.rules"))


@bp.route("/team/members/<int:membership_id>/handover", methods=["GET", "POST"])
@requires("team.handover")
def handover(membership_id: int):
    membership = get_for_tenant_or_404(Membership, membership_id)
    if not membership.active:
        abort(404)
    if request.method == "POST":
        recipients = [int(v) for v in request.form.getlist("recipients") if v.isdigit()]
        try:
            summary = handover_service.hand_over(g.tenant, current_user, membership, recipients)
        except services.WorkspaceError as error:
            flash(str(error), "error")
        else:
            flash(
                _(
                    "%(name)s is deactivated; %(num)d open items were handed over.",
                    name=membership.user.name,
                    num=summary["moved"],
                ),
                "success",
            )
            return redirect_to(url_for("workspace.team"))
    return render(
        "workspace/handover.html",
        member=membership,
        work=handover_service.open_work(g.tenant, membership.user_id),
        candidates=handover_service.candidates(g.tenant, membership),
    )
