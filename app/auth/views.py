"""Signup, login, logout, password reset, invitations and one's own account."""

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from wtforms.validators import DataRequired

from app.auth import bp, services, tokens
from app.auth.forms import (
    AcceptInvitationForm,
    ChangeEmailForm,
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    ResetPasswordForm,
    SignupForm,
)
from app.extensions import db, limiter
from app.forms import StrongPassword
from app.htmx import local_path_or, redirect_to, render
from app.i18n import current_language
from app.models import Tenant, User
from app.workspace import regions
from app.workspace.services import WorkspaceError, find_user_by_email

DEVICE_COOKIE = "conveyor_device"


def _account_key() -> str:
    return "account:" + (request.form.get("email") or "").strip().lower()


def _login_failed(_response) -> bool:
    """Only wrong passwords count against the limits: signing in often is no attack."""
    return bool(g.get("login_failed"))


def _signup_sent(_response) -> bool:
    """Only signups that send an email count against the address's limit: no mailbox
    gets more than a few of them an hour, whoever types it."""
    return bool(g.get("signup_sent"))


def _signed_in_here_before() -> bool:
    """This browser once signed in to the account it names: guessing elsewhere
    must not lock its owner out."""
    return tokens.device_signed_in_as(
        request.cookies.get(DEVICE_COOKIE), request.form.get("email") or ""
    )


def _remember_device(response, user: User):
    config = current_app.config
    response.set_cookie(
        DEVICE_COOKIE,
        tokens.device_token(user.email),
        max_age=tokens.DEVICE_MAX_AGE,
        httponly=True,
        secure=config["SESSION_COOKIE_SECURE"],
        samesite="Lax",
    )
    return response


def _safe_next(default: str, target: str | None = None) -> str:
    """Only same-site relative paths are followed after login."""
    return local_path_or(default, target if target is not None else request.args.get("next"))


def _clear_session() -> None:
    """Empty the session but keep the language the visitor picked."""
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language


def _start_session(user: User, remember: bool, tenant_id: int | None = None) -> None:
    # A fresh session on every login: nothing from before survives (fixation).
    _clear_session()
    login_user(user, remember=remember)
    session["tenant_id"] = tenant_id or user.last_tenant_id
    services.record_login(user)


def _field_error(form, error: WorkspaceError) -> None:
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, str(error)]
    else:
        flash(str(error), "error")


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("10/hour", methods=["POST"])
@limiter.limit("3/hour", methods=["POST"], key_func=_account_key, deduct_when=_signup_sent)
def signup():
    # The country the browser's languages point at, unless the visitor picks another.
    guess = regions.country_from_languages([tag for tag, _q in request.accept_languages])
    form = SignupForm(country=guess)
    language = current_language()
    form.country.choices = regions.country_names(language)
    if form.validate_on_submit():
        services.sign_up(
            form.business_name.data,
            form.name.data,
            form.email.data,
            form.password.data,
            language=language,
            country=form.country.data,
            timezone=form.timezone.data if regions.is_timezone(form.timezone.data) else None,
        )
        g.signup_sent = True
        # The same page whether or not the address has an account: the email says which.
        return redirect_to(url_for("auth.signup_sent"))
    return render("auth/signup.html", "auth/_signup_form.html", form=form)


@bp.route("/signup/sent")
def signup_sent():
    return render_template("auth/signup_sent.html")


@bp.route("/signup/confirm/<token>", methods=["GET", "POST"])
@limiter.limit("10/15 minutes", methods=["POST"])
def confirm_signup(token: str):
    """The emailed link: a button opens the workspace (a GET changes nothing, so mail
    scanners that follow links create nothing)."""
    pending_id = tokens.read_signup_token(token)
    pending = services.pending_signup(pending_id) if pending_id else None
    if pending is None:
        flash(_("This link has expired or was already used. Sign in, or sign up again."), "error")
        return redirect(url_for("auth.login"))
    if request.method == "POST":
        user = services.confirm_signup(pending.id)
        if user is None:
            flash(_("This email already has an account: sign in."), "info")
            return redirect_to(url_for("auth.login"))
        _start_session(user, remember=False)
        flash(_("Your workspace is ready."), "success")
        return redirect_to(url_for("main.dashboard"))
    return render_template("auth/confirm_signup.html", pending=pending)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"], deduct_when=_login_failed)
@limiter.limit(
    "10/15 minutes",
    methods=["POST"],
    key_func=_account_key,
    deduct_when=_login_failed,
    exempt_when=_signed_in_here_before,
)
def login():
    if current_user.is_authenticated and g.get("membership"):
        return redirect(url_for("main.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is None or not services.can_sign_in(user):
            # One message for every failure: no hint whether the email exists.
            form.password.errors = [_("Wrong email or password, or no active workspace.")]
            g.login_failed = True
        else:
            _start_session(user, remember=form.remember.data)
            return _remember_device(redirect_to(_safe_next(url_for("main.dashboard"))), user)
    return render("auth/login.html", "auth/_login_form.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        # Copies of the session or remember cookie must not outlive the sign-out.
        services.end_sessions(current_user._get_current_object())
    logout_user()
    _clear_session()
    flash(_("You are signed out."), "info")
    return redirect_to(url_for("auth.login"))


@bp.route("/no-workspace")
@login_required
def no_workspace():
    return render_template("auth/no_workspace.html")


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit("5/15 minutes", methods=["POST"])
@limiter.limit("3/hour", methods=["POST"], key_func=_account_key)
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data)
        flash(_("If an account uses that email, a reset link is on its way."), "info")
        return redirect_to(url_for("auth.login"))
    return render("auth/forgot_password.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit("10/15 minutes", methods=["POST"])
def reset_password(token: str):
    found = tokens.read_password_reset_token(token)
    user = db.session.get(User, found[0]) if found else None
    if user is None or user.password_hash[-12:] != found[1]:
        flash(_("This reset link has expired or was already used. Ask for a new one."), "error")
        return redirect(url_for("auth.forgot_password"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        services.reset_password(user, form.password.data)
        flash(_("Your password is changed. Sign in with it."), "success")
        return redirect_to(url_for("auth.login"))
    return render("auth/reset_password.html", form=form)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@limiter.limit("20/15 minutes", methods=["POST"])
def accept_invitation(token: str):
    found = tokens.read_invitation_token(token)
    invitation = services.load_invitation(*found) if found else None
    if invitation is None:
        return render_template("auth/invitation_invalid.html"), 404
    tenant = db.session.get(Tenant, invitation.tenant_id)
    existing = find_user_by_email(invitation.email)
    form = AcceptInvitationForm()
    if existing is None:
        form.password.validators = [DataRequired(), StrongPassword()]
    if form.validate_on_submit():
        try:
            user = services.join_by_invitation(
                invitation, form.name.data or "", form.password.data, current_language()
            )
        except WorkspaceError as error:
            _field_error(form, error)
        else:
            _start_session(user, remember=False, tenant_id=invitation.tenant_id)
            flash(_("Welcome to %(name)s.", name=tenant.name), "success")
            return redirect_to(url_for("main.dashboard"))
    return render(
        "auth/accept_invitation.html",
        form=form,
        invitation=invitation,
        tenant=tenant,
        existing=existing,
    )


@bp.route("/account", methods=["GET"])
@login_required
def account():
    return render(
        "auth/account.html",
        email_form=ChangeEmailForm(prefix="email"),
        password_form=ChangePasswordForm(prefix="pw"),
    )


@bp.route("/account/email", methods=["POST"])
@login_required
@limiter.limit("10/hour")
def change_email():
    email_form = ChangeEmailForm(prefix="email")
    if email_form.validate_on_submit():
        try:
            services.change_email(
                current_user, email_form.current_password.data, email_form.new_email.data
            )
        except WorkspaceError as error:
            _field_error(email_form, error)
        else:
            flash(_("Your email is now %(email)s.", email=current_user.email), "success")
            return redirect_to(url_for("auth.account"))
    return render(
        "auth/account.html",
        http_status=422,
        email_form=email_form,
        password_form=ChangePasswordForm(prefix="pw"),
    )


@bp.route("/account/password", methods=["POST"])
@login_required
@limiter.limit("10/hour")
def change_password():
    password_form = ChangePasswordForm(prefix="pw")
    user = current_user._get_current_object()
    if password_form.validate_on_submit():
        try:
            services.change_password(
                user, password_form.current_password.data, password_form.new_password.data
            )
        except WorkspaceError as error:
            _field_error(password_form, error)
        else:
            # The session version changed: sign in again on this device right away.
            login_user(user)
            flash(_("Your password is changed; other devices are signed out."), "success")
            return redirect_to(url_for("auth.account"))
    return render(
        "auth/account.html",
        http_status=422,
        email_form=ChangeEmailForm(prefix="email"),
        password_form=password_form,
    )


@bp.route("/account/digest", methods=["POST"])
@login_required
def set_digest():
    """Turn the morning digest and reminders on or off for the current workspace."""
    membership = g.get("membership")
    if membership is None:
        abort(404)
    services.set_digest(membership, wanted=request.form.get("digest") == "on")
    flash(_("Email preferences saved."), "success")
    return redirect_to(url_for("auth.account"))


@bp.route("/account/language", methods=["POST"])
def set_language():
    language = request.form.get("language", "")
    if language not in ("en", "ru"):
        abort(400)
    if current_user.is_authenticated:
        services.set_language(current_user, language)
    session["language"] = language
    return redirect_to(_safe_next(url_for("main.dashboard"), request.form.get("next", "")))
