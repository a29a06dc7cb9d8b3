// LTI Deep Linking (server/lti/pages.py): post the signed LtiDeepLinkingResponse back to the
// LMS at once (the form is the page; no inline script under its Content-Security-Policy).
const form = document.getElementById('podium-autopost');
if (form) form.submit();
