"""The session cookie: Flask's signed cookie, opened without building its signer when the
request carries none (a machine's post, a first visit): the same empty session Flask's
own interface gives then, for less work."""

from flask.sessions import SecureCookieSessionInterface


class SessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
