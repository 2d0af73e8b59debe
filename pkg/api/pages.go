package api

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// The pages mailed links open. They are self-contained (no external
// assets; inline style and script allowed by hash in their CSP), and the
// verify page confirms only on a click: a mail scanner that fetches the
// link confirms nothing.

// pageStyle is the pages' inline CSS.
const pageStyle = `body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b;background:#fafafa}` +
	`h1{font-size:1.4rem}button{font:inherit;padding:.5rem 1.2rem;border-radius:.3rem;border:1px solid #245;background:#2a5db0;color:#fff;cursor:pointer}` +
	`button:disabled{opacity:.5;cursor:default}pre{background:#eee;padding:.7rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}` +
	`#result{font-weight:600}`

// verifyScript posts the token from the page's URL when the button is
// clicked, and shows the outcome.
const verifyScript = `(function () {
  var button = document.getElementById("confirm");
  if (!button) { return; }
  var result = document.getElementById("result");
  var token = new URLSearchParams(window.location.search).get("token") || "";
  button.addEventListener("click", function () {
    button.disabled = true;
    result.textContent = "";
    fetch("api/v1/auth/verify", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({token: token}),
      credentials: "same-origin"
    }).then(function (resp) {
      return resp.json().then(function (body) { return {ok: resp.ok, body: body}; });
    }).then(function (r) {
      if (r.ok) {
        result.textContent = result.dataset.ok.replace("%s", r.body.email);
        button.hidden = true;
      } else {
        var msg = r.body && r.body.error ? r.body.error.message : "";
        result.textContent = result.dataset.fail + " " + msg;
      }
    }).catch(function () {
      result.textContent = result.dataset.fail;
      button.disabled = false;
    });
  });
})();`

const pageHead = `<!doctype html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{.T.Title}} · blindrelay</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>{{.T.Title}}</h1>
`

const pageFoot = `</main>
</body>
</html>
`

var verifyTemplate = template.Must(template.New("verify").Parse(pageHead + `{{if .Token}}
<p>{{.T.Intro}}</p>
<p><button id="confirm" type="button">{{.T.Button}}</button></p>
<p id="result" role="status" data-ok="{{.T.Success}}" data-fail="{{.T.Failure}}"></p>
<noscript><p>{{.T.NoScript}}</p></noscript>
{{else}}
<p>{{.T.Incomplete}}</p>
{{end}}
<script>` + verifyScript + `</script>
` + pageFoot))

var resetTemplate = template.Must(template.New("reset").Parse(pageHead + `{{if .Token}}
<p>{{.T.Intro}}</p>
<pre>blindctl recovery reset --token '{{.Link}}' --recovery-file FILE</pre>
<p>{{.T.NoFile}}</p>
<pre>blindctl recovery reset --token '{{.Link}}'</pre>
<p>{{.T.Validity}}</p>
{{else}}
<p>{{.T.Incomplete}}</p>
{{end}}` + pageFoot))

// cspHash is the CSP source expression for an inline element's content.
func cspHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
}

// pageCSP allows the pages' own inline style and script and, for the
// script, requests to this relay.
var pageCSP = "default-src 'none'; style-src " + cspHash(pageStyle) +
	"; script-src " + cspHash(verifyScript) +
	"; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageText is the text of one page in one language.
type pageText struct {
	Title, Intro, Button, Success, Failure, NoScript, Incomplete, NoFile, Validity string
}

var verifyTexts = map[string]pageText{
	"en": {
		Title:      "Confirm your e-mail address",
		Intro:      "Click the button to confirm your e-mail address for blindrelay.",
		Button:     "Confirm",
		Success:    "Confirmed: %s. You can now log in.",
		Failure:    "The address could not be confirmed.",
		NoScript:   "This page needs JavaScript. You can also run: blindctl verify with the link from the mail.",
		Incomplete: "This link is incomplete. Please open the whole link from the mail.",
	},
	"de": {
		Title:      "E-Mail-Adresse bestätigen",
		Intro:      "Klicken Sie auf die Schaltfläche, um Ihre E-Mail-Adresse für blindrelay zu bestätigen.",
		Button:     "Bestätigen",
		Success:    "Bestätigt: %s. Sie können sich jetzt anmelden.",
		Failure:    "Die Adresse konnte nicht bestätigt werden.",
		NoScript:   "Diese Seite braucht JavaScript. Sie können auch blindctl verify mit dem Link aus der E-Mail ausführen.",
		Incomplete: "Dieser Link ist unvollständig. Bitte öffnen Sie den ganzen Link aus der E-Mail.",
	},
	"fr": {
		Title:      "Confirmez votre adresse e-mail",
		Intro:      "Cliquez sur le bouton pour confirmer votre adresse e-mail pour blindrelay.",
		Button:     "Confirmer",
		Success:    "Confirmée : %s. Vous pouvez maintenant vous connecter.",
		Failure:    "L’adresse n’a pas pu être confirmée.",
		NoScript:   "Cette page nécessite JavaScript. Vous pouvez aussi lancer blindctl verify avec le lien de l’e-mail.",
		Incomplete: "Ce lien est incomplet. Veuillez ouvrir le lien complet de l’e-mail.",
	},
}

var resetTexts = map[string]pageText{
	"en": {
		Title:      "Reset your password",
		Intro:      "To choose a new password, run the blindrelay client with this link. With your recovery file your devices keep working:",
		NoFile:     "Without a recovery file new keys replace the old ones, and access to the devices shared with your account is lost:",
		Validity:   "This link works once, and only for a limited time.",
		Incomplete: "This link is incomplete. Please open the whole link from the mail.",
	},
	"de": {
		Title:      "Passwort zurücksetzen",
		Intro:      "Um ein neues Passwort zu wählen, starten Sie den blindrelay-Client mit diesem Link. Mit Ihrer Wiederherstellungsdatei funktionieren Ihre Geräte weiter:",
		NoFile:     "Ohne Wiederherstellungsdatei ersetzen neue Schlüssel die alten, und der Zugriff auf die mit Ihrem Konto geteilten Geräte geht verloren:",
		Validity:   "Dieser Link funktioniert nur einmal und nur für begrenzte Zeit.",
		Incomplete: "Dieser Link ist unvollständig. Bitte öffnen Sie den ganzen Link aus der E-Mail.",
	},
	"fr": {
		Title:      "Réinitialiser votre mot de passe",
		Intro:      "Pour choisir un nouveau mot de passe, lancez le client blindrelay avec ce lien. Avec votre fichier de récupération, vos appareils continuent de fonctionner :",
		NoFile:     "Sans fichier de récupération, de nouvelles clés remplacent les anciennes et l’accès aux appareils partagés avec votre compte est perdu :",
		Validity:   "Ce lien ne fonctionne qu’une fois, et pour une durée limitée.",
		Incomplete: "Ce lien est incomplet. Veuillez ouvrir le lien complet de l’e-mail.",
	},
}

// tokenSyntax is what a mailed token looks like: base64url, no padding.
var tokenSyntax = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

type pageData struct {
	Lang  string
	T     pageText
	Token string
	Link  string
}

func (s *server) verifyPage(w http.ResponseWriter, r *http.Request) {
	s.page(w, r, verifyTemplate, verifyTexts)
}

func (s *server) resetPage(w http.ResponseWriter, r *http.Request) {
	s.page(w, r, resetTemplate, resetTexts)
}

// page renders t for the token in r's query, in the request's language.
func (s *server) page(w http.ResponseWriter, r *http.Request, t *template.Template, texts map[string]pageText) {
	lang := acceptLanguage(r.Header.Values("Accept-Language"))
	if lang == "" {
		lang = "en"
	}
	d := pageData{Lang: lang, T: texts[lang]}
	if tok := r.URL.Query().Get("token"); tokenSyntax.MatchString(tok) {
		d.Token = tok
		d.Link = strings.TrimSuffix(s.accounts.Config().PublicURL, "/") + r.URL.Path + "?token=" + url.QueryEscape(tok)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		s.error(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Vary", "Accept-Language")
	w.Write([]byte(b.String()))
}
