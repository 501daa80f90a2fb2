# Les mots de Homeward en français : courriels de rappel, récapitulatifs et pages des liens
# partenaires. Mêmes identifiants et mêmes variables que en.ftl.

## Courriels

mail-greeting = Bonjour { $name },
mail-plan-reference = Référence du plan : { $reference }

reminder-before-due-subject = Rappel : { $title }, échéance le { $due }
reminder-before-due-line = L'étape « { $title } » arrive à échéance le { $due }.
reminder-on-due-subject = Échéance aujourd'hui : { $title }
reminder-on-due-line = L'étape « { $title } » arrive à échéance aujourd'hui ({ $due }).
reminder-overdue-subject = En retard : { $title } (échéance le { $due })
reminder-overdue-line = L'étape « { $title } » devait être faite le { $due }, { $days ->
        [1] il y a un jour.
       *[other] il y a { $days } jours.
    }
reminder-escalation-subject = Escalade : { $title }, { $days ->
        [1] un jour
       *[other] { $days } jours
    } de retard
reminder-escalation-line = L'étape « { $title } » devait être faite le { $due } et a { $days ->
        [1] un jour
       *[other] { $days } jours
    } de retard. Vous recevez ce message en tant que responsable du travailleur social.
reminder-reintegration-subject = Pas encore de plan de réintégration un mois après l'arrivée : { $title }
reminder-reintegration-line = Un mois s'est écoulé depuis l'arrivée et « { $title } » n'est pas encore fait. Vous recevez ce message en tant que travailleur social du plan.
reminder-footer = Homeward vous envoie ce rappel car l'étape vous est confiée.

link-acknowledge = Confirmer la prise en charge de cette tâche
link-confirm-visit = Confirmer que la visite a eu lieu

digest-subject = Vos tâches Homeward : { $open } ouvertes, { $overdue } en retard
digest-none = Vous n'avez aucune tâche ouverte.
digest-overdue = EN RETARD
digest-task = { $title } (plan { $reference })
digest-task-due = { $title } (plan { $reference }), échéance { $due }
digest-more = + { $count } autres tâches
digest-footer = Homeward vous envoie ce récapitulatif selon le calendrier que vous avez choisi.

## Pages des liens partenaires

page-plan-reference = Référence du plan
page-due = Échéance
page-your-task = Votre tâche
page-follow-up-visit = Visite de suivi
page-acknowledge-prompt = Merci de confirmer que vous avez vu cette tâche et que vous vous en chargez.
page-acknowledge-button = Je prends en charge cette tâche
page-visit-date = Date de la visite
page-visit-how = Comment va-t-elle ?
page-visit-concerns = Préoccupations (s'il y en a)
page-visit-button = Confirmer la visite
page-thanks = Merci
page-thanks-body = C'est enregistré. Le travailleur social peut le voir dès maintenant.

wellbeing-good = Bien
wellbeing-fair = Moyen
wellbeing-poor = Mauvais
wellbeing-at_risk = En danger

concern-safety = Sécurité
concern-health = Santé
concern-housing = Logement
concern-income = Revenus
concern-education = Éducation
concern-family = Famille
concern-legal = Juridique
concern-stigma = Stigmatisation
concern-other = Autre

page-visit-error-date = Indiquez la date de la visite (année-mois-jour).
page-visit-error-wellbeing = Indiquez comment elle va.
page-visit-error-concern = Choisissez les préoccupations dans la liste.

link-invalid = Ce lien n'est pas valide
link-expired = Ce lien a expiré
link-used = Ce lien a déjà été utilisé
link-already-done = C'est déjà enregistré
link-no-longer-open = Cette tâche n'est plus ouverte
link-not-yours = Cette tâche ne vous est plus confiée
link-rejected = Cela n'a pas pu être enregistré
link-nothing-recorded = Rien n'a été enregistré. Pour signaler quelque chose, contactez le travailleur social.
page-try-again-later = Veuillez réessayer plus tard

## Avis de compte

invitation-subject = Votre invitation à Homeward
invitation-line = { $admin } vous a inscrit·e dans Homeward pour { $organisation }. Ouvrez le lien ci-dessous pour créer votre propre jeton d'accès. Le lien fonctionne une seule fois, jusqu'au { $expires } ; personne d'autre ne voit votre jeton.
invitation-link = Créer mon jeton
invitation-footer = Si vous ne vous y attendiez pas, n'ouvrez pas le lien et prévenez votre organisation.
address-changed-subject = Votre adresse e-mail Homeward a été modifiée
address-changed-line = Le { $when }, { $admin } a remplacé l'adresse à laquelle Homeward vous écrit, { $old }, par { $new }. Vos rappels y sont désormais envoyés.
organisation-changed-subject = Votre organisation dans Homeward a été modifiée
organisation-changed-line = Le { $when }, { $admin } vous a déplacé·e de { $old } vers { $new } dans Homeward.
notice-footer = Si vous ne l'avez pas demandé, prévenez immédiatement votre responsable ou votre organisation.

## Pages d'invitation

invite-title = Créer votre jeton Homeward
invite-prompt = Ceci crée votre propre jeton d'accès à Homeward. Il n'est affiché qu'une fois : copiez-le dans l'application que vous utilisez.
invite-button = Créer mon jeton
invite-token-title = Votre jeton
invite-token-note = Gardez-le secret. Il est valable jusqu'au { $expires }. Envoyez-le sous la forme « Authorization: Bearer » suivi du jeton.
invite-invalid = Cette invitation ne peut pas être utilisée
invite-invalid-body = Elle a déjà servi, une plus récente l'a remplacée, ou elle a expiré. Demandez une nouvelle invitation à votre administrateur.

## A step named by its kind (a step a social worker added is never named by its own title outside the API)
step-kind-travel-document = Document de voyage
step-kind-travel = Voyage
step-kind-family-mediation = Médiation familiale
step-kind-origin-contact = Contact dans la communauté d'origine
step-kind-follow-up = Visite de suivi
step-kind-medical = Soins médicaux
step-kind-legal = Question juridique
step-kind-reintegration-support = Aide à la réintégration
step-kind-custom = Tâche

## Console web

sign-in-subject = Votre lien de connexion à Homeward
sign-in-line = Quelqu'un a demandé à se connecter à Homeward avec votre adresse, en tant que { $role } de { $organisation }. Le lien ci-dessous fonctionne une seule fois, jusqu'au { $expires }.
sign-in-link = Me connecter
sign-in-footer = Si ce n'était pas vous, n'ouvrez pas le lien : rien ne se passe tant qu'il n'est pas utilisé.

role-social_worker = travailleur·se social·e
role-supervisor = superviseur·e
role-government_liaison = agent·e de liaison gouvernemental·e
role-partner_contact = contact partenaire
role-admin = administrateur·rice

console-skip = Aller au contenu
console-sign-out = Se déconnecter
console-language = Langue
console-change-language = Changer
nav-inbox = À faire

sign-in-title = Se connecter à Homeward
sign-in-by-link = Recevoir un lien de connexion par courriel
sign-in-email = Votre adresse électronique
sign-in-send = M'envoyer un lien
sign-in-by-token = Ou se connecter avec un jeton d'accès
sign-in-token = Votre jeton d'accès
sign-in-token-hint = Il commence par hw_.
sign-in-with-token = Se connecter
sign-in-token-wrong = Ce jeton est inconnu, expiré ou révoqué. Collez-le à nouveau, demandez-en un nouveau à votre administrateur, ou connectez-vous avec un lien.
sign-in-email-wrong = Indiquez l'adresse à laquelle Homeward vous écrit, par exemple nom@example.org.
sign-in-sent-title = Consultez vos courriels
sign-in-sent = Si { $email } est l'adresse d'une personne inscrite dans Homeward, un lien de connexion est en route. Il fonctionne une seule fois, dans les { $minutes } minutes.
sign-in-link-prompt = Appuyez sur le bouton pour vous connecter à Homeward en tant que { $name }. Le lien fonctionne une seule fois.
sign-in-link-button = Me connecter
sign-in-link-invalid = Ce lien de connexion ne peut pas être utilisé
sign-in-link-invalid-body = Il a déjà servi, un plus récent l'a remplacé, ou il a expiré. Demandez un nouveau lien.
sign-in-again = Se reconnecter
session-ended = Votre session est terminée. Reconnectez-vous pour reprendre là où vous étiez.
refused-title = Cette demande a été refusée
refused-foreign = Le formulaire n'a pas été envoyé depuis une page de Homeward. Rien n'a été modifié.
refused-form-token = Ce formulaire est périmé ou appartient à une autre session. Rien n'a été modifié : rouvrez la page et envoyez le formulaire à nouveau.
too-many-tries = Trop d'essais depuis cette adresse. Attendez { $seconds } secondes, puis réessayez.
refused-retry = Retour à la liste des tâches

inbox-title = À faire
inbox-empty = Aucune tâche ne correspond.
inbox-filters = Filtres
inbox-kind = Type
inbox-any = Tous
inbox-status = Statut
inbox-open = Ouvertes (ni faites, ni annulées)
inbox-due-from = Échéance à partir du
inbox-due-before = Échéance jusqu'au
inbox-overdue-only = En retard seulement
inbox-show = Afficher
inbox-task = Tâche
inbox-plan = Plan
inbox-for = Pour
inbox-when = Quand
inbox-priority = Priorité
inbox-assignee = Confiée à
inbox-next = Page suivante
inbox-first = Première page
inbox-count = { $count ->
    [one] 1 tâche sur cette page
   *[other] { $count } tâches sur cette page
}
inbox-bad-date = Indiquez une date sous la forme année-mois-jour, par exemple 2026-12-31.
due-overdue = { $days ->
    [0] En retard depuis aujourd'hui
    [one] En retard d'un jour
   *[other] En retard de { $days } jours
}
due-today = Échéance aujourd'hui
due-in = { $days ->
    [one] Échéance demain
   *[other] Échéance dans { $days } jours
}
due-on = le { $date }
due-none = Pas encore d'échéance
follow-up-on = Visite de suivi le { $date }
unreadable = [illisible]
erased = [effacé]

status-pending = En attente
status-ready = Prête
status-in_progress = En cours
status-done = Faite
status-blocked = Bloquée
status-cancelled = Annulée

priority-low = Basse
priority-normal = Normale
priority-high = Haute
priority-urgent = Urgente

document-requested = Demandé
document-submitted_to_authority = Déposé auprès de l'autorité
document-issued = Délivré
document-delivered = Remis

plan-title = Plan { $reference }
plan-not-found = Aucun plan de cet identifiant ne vous est visible.
plan-summary = Résumé
plan-status = Statut
plan-template = Modèle
plan-origin = Pays d'origine
plan-opened = Ouvert le
plan-departed = Départ
plan-arrived = Arrivée
plan-closed = Clos le
plan-case-worker = Référent·e
plan-suspended = Le consentement au retour est retiré : rien n'avance et aucun rappel ne part tant qu'il n'est pas redonné.
plan-person = Personne
person-name = Nom
person-born = Date de naissance
person-language = Langue préférée
person-phone = Téléphone
person-email = Courriel
person-address = Adresse
plan-goals = Objectifs
plan-consents = Consentements
plan-none = Rien d'enregistré.
consent-given = Donné le { $date }
consent-withdrawn = Retiré le { $date }
consent-return = Retour
consent-family_contact = Contact avec la famille
plan-steps = Étapes
step-assignee = Confiée à
step-due = Échéance
step-depends = Attend
step-document = Document
step-reminders = Rappels
step-unassigned = Non attribuée
step-why = Motif
reminders-sent = { $count ->
    [one] 1 envoyé
   *[other] { $count } envoyés
}
reminders-failed = { $count ->
    [one] 1 non remis
   *[other] { $count } non remis
}
plan-timeline = Chronologie
timeline-today = Aujourd'hui
timeline-summary = { $steps ->
    [one] 1 étape
   *[other] { $steps } étapes
} entre le { $from } et le { $to } : { $done } faites, { $overdue } en retard.
timeline-milestones = Jalons
milestone-consent = Consentement au retour
milestone-departure = Départ
milestone-arrival = Arrivée
timeline-from = Du
timeline-to = Échéance
plan-history = Historique
history-next = Entrées suivantes
history-first = Premières entrées
history-by-link = par un lien partenaire
history-when = Quand
history-who = Qui
history-what = Quoi

plan-status-draft = Brouillon
plan-status-active = Actif
plan-status-travelling = En voyage
plan-status-returned = Rentré·e
plan-status-monitoring = En suivi
plan-status-closed = Clos

event-plan_opened = Plan ouvert
event-goals_set = Objectifs fixés
event-step_added = Étape ajoutée
event-step_removed = Étape retirée
event-step_assigned = Étape attribuée
event-step_rescheduled = Étape replanifiée
event-step_dependencies_changed = Dépendances de l'étape modifiées
event-step_prioritised = Priorité de l'étape modifiée
event-reminder_policy_set = Règle de rappel définie
event-step_started = Étape commencée
event-step_blocked = Étape bloquée
event-step_unblocked = Étape débloquée
event-step_completed = Étape terminée
event-step_acknowledged = Étape prise en compte
event-step_cancelled = Étape annulée
event-document_status_updated = Statut du document mis à jour
event-consent_recorded = Consentement enregistré
event-consent_withdrawn = Consentement retiré
event-plan_activated = Plan activé
event-plan_suspended = Plan suspendu
event-plan_resumed = Plan repris
event-departure_confirmed = Départ confirmé
event-arrival_confirmed = Arrivée confirmée
event-follow_up_recorded = Visite de suivi enregistrée
event-monitoring_started = Suivi commencé
event-plan_closed = Plan clos
event-case_worker_reassigned = Référent·e changé·e
event-reminder_sent = Rappel envoyé
event-step_escalated = Étape signalée au superviseur
event-reminder_failed = Rappel non remis

form-start = Commencer
form-complete = Marquer comme faite
form-block = Bloquer
form-block-reason = Pourquoi est-elle bloquée ?
form-unblock = Débloquer
form-document = Statut du document
form-update = Mettre à jour
form-visit = Enregistrer la visite
form-visited-on = Date de la visite
form-wellbeing = Comment va-t-elle ?
form-concerns = Préoccupations soulevées
form-confirm-needed = Cochez la case pour confirmer que le plan doit être suspendu.
form-required = Ce champ est nécessaire : écrivez quelques mots.
form-too-long = { $max } caractères au plus : raccourcissez.
form-refused = Non enregistré : { $message }
conflict-title = Quelqu'un a modifié ce plan pendant que vous le consultiez
conflict-body = Rien de votre formulaire n'a été enregistré. Le plan tel qu'il est maintenant est ci-dessous : renvoyez votre formulaire s'il s'applique toujours.
conflict-changes = Ce qui a été enregistré depuis que vous avez ouvert la page :

live-changed = Cette page a changé depuis que vous l'avez ouverte.
live-reload = Afficher les changements

nav-plans = Plans
plans-title = Plans
plans-empty = Aucun plan ne correspond.
plans-overdue-only = Avec des étapes en retard seulement
plans-overdue-steps = { $count ->
    [one] 1 étape en retard
   *[other] { $count } étapes en retard
}
plans-bad-country = Indiquez le pays par son code ISO à deux lettres, par exemple NG ou AL.
new-plan-title = Inscrire une personne et ouvrir son plan
new-plan-plan = Plan
new-plan-country-hint = Le pays où elle retourne, en code à deux lettres : NG pour le Nigeria, AL pour l'Albanie.
new-plan-open = Inscrire et ouvrir le plan

person-title = Dossier de la personne
person-not-found = Aucune personne de cet identifiant dont vous pouvez voir le dossier.
person-details = Ses coordonnées
person-reason = Motif de la correction
person-correct = Corriger ses coordonnées
person-nothing-changed = Rien n'a changé dans ses coordonnées : modifiez un champ, puis envoyez.
person-notes = Notes de suivi
person-add-note = Une nouvelle note
person-save-note = Ajouter la note
person-conflict-title = Son dossier a été modifié pendant que vous le consultiez
person-erased = Ses données ont été effacées le { $date }.
person-hold = Sous conservation légale depuis le { $date } : { $reason }
person-open-record = Son dossier

plan-milestones = Départ, arrivée, clôture
form-departure = Confirmer le départ
form-departure-at = Parti·e le (votre heure)
form-arrival = Confirmer l'arrivée
form-arrival-at = Arrivé·e le (votre heure)
form-close = Clore le plan
form-close-reason = Pourquoi est-il clos ?
form-bad-time = Indiquez une date et une heure, par exemple 2026-04-10 06:00.
close-reason-reintegrated = Elle est réintégrée
close-reason-support_ended = L'accompagnement est terminé
close-reason-opted_out = Elle a choisi d'arrêter
close-reason-moved_away = Elle a déménagé
close-reason-lost_contact = Le contact est perdu
close-reason-deceased = Elle est décédée
close-reason-other = Une autre raison

person-protection = Ses données
person-access-log = Qui a lu ses données
person-access-fields = Quoi
person-access-through = Par
person-place-hold = Placer une conservation légale
person-lift = Lever la conservation légale
person-hold-reason = Motif (une procédure judiciaire, par exemple)
person-erase = Effacer ses données
person-erase-warning = Effacer détruit sa clé : son nom, ses coordonnées, ses notes et tout mot personnel de ses plans deviennent illisibles pour toujours, dans toutes les copies. Les dates et les étapes de ses plans restent, sans elle.
person-erase-reason = Motif
person-erase-confirm = Je comprends que c'est irréversible
person-erase-confirm-needed = Cochez la case pour confirmer que ses données doivent être effacées pour toujours.
erasure-reason-survivor_request = Elle l'a demandé
erasure-reason-registered_in_error = Elle a été inscrite par erreur
erasure-reason-legal_obligation = La loi l'exige

search-title = Retrouver une personne
search-name = Son nom, ou une partie
search-find = Rechercher
search-none = Personne de votre organisation ne correspond.
search-nothing = Indiquez un nom, une date de naissance, ou les deux.

## A step's own page, and adding a step
step-change-title = Modifier « { $title } »
step-add-title = Ajouter une étape
step-back = Retour au plan
step-change-link = Modifier cette étape
step-add-link = Ajouter une étape
step-section-reschedule = Quand la faire
step-section-assign = Qui s'en charge
step-section-depends = Ce qu'elle attend
step-section-remove = Retirer l'étape
step-section-cancel = Annuler l'étape
form-due-at = À une date
form-due-after = Quelques jours après un jalon
form-due-none = Sans échéance
form-due-at-label = Date et heure ({ $zone })
form-due-days = Jours après le jalon
form-due-milestone = Le jalon
form-follow-up-on = Visite de suivi le (facultatif)
form-group = Ou un groupe qui peut la prendre (facultatif)
form-depends-none = Il n'y a pas d'autre étape à attendre.
form-reminders-before = Rappeler ce nombre de jours avant l'échéance (vide : pas avant)
form-reminders-on-due = Rappeler le jour de l'échéance
form-reminders-every = En retard, rappeler tous les ce nombre de jours (vide : jamais)
form-reminders-escalate = Prévenir le superviseur après ce nombre de jours de retard (vide : jamais)
form-remove-reason = Pourquoi la retirer ?
form-remove = Retirer cette étape
form-cancel-reason = Pourquoi l'annuler ?
form-cancel = Annuler cette étape
form-save = Enregistrer
form-add-step = Ajouter l'étape
form-kind = Type d'étape
form-title = Titre
form-bad-days = Indiquez un nombre entier de jours entre { $from } et { $to }.
form-bad-zone = Ce fuseau horaire est inconnu : indiquez-en un comme Europe/Paris.
form-bad-date = Indiquez une date, par exemple 2026-04-10.
form-choose = Choisissez parmi les options proposées.
form-required-number = Indiquez un nombre de jours.
form-too-many = { $max } au plus : choisissez-en moins.
milestone-plan_opened = Ouverture du plan

## A supervisor's page
nav-team = Équipe
nav-admin = Administration
team-title = Votre équipe
team-supervisors-only = Cette page est réservée aux superviseurs.
team-late = Étapes en retard, par travailleur social
team-nothing-late = Aucune étape de votre organisation n'est en retard.
team-step = Étape
team-survivor = Survivante
team-escalated = signalée à vous
team-hand-over = Transférer des dossiers
team-hand-over-hint = Chaque plan ouvert d'un travailleur social passe à un autre de votre organisation ; les plans clos gardent leur référent.
team-from = De
team-to = À
team-inactive = désactivé
team-hand-over-button = Transférer les dossiers
team-choose-both = Choisissez de qui et vers qui transférer les dossiers.
team-same-worker = Choisissez deux travailleurs sociaux différents.
team-handed-over = { $count ->
    [0] Aucun plan ouvert n'a été transféré.
    [one] Un plan a été transféré.
   *[other] { $count } plans ont été transférés.
}
team-erasures = Données à effacer dans les 90 jours
team-erased-on = effacées le { $date }
team-on-hold = sous conservation légale
team-review = Personnes à réexaminer
team-review-hint = Rien n'a été enregistré à leur sujet depuis un an et aucun de leurs plans n'est ouvert : la règle de conservation ne les efface pas ; décidez-en.
team-last-activity = dernière activité { $date }, { $count ->
    [0] aucun plan en brouillon
    [one] un plan en brouillon
   *[other] { $count } plans en brouillon
}
team-none = Aucune.

## Administration
admin-title = Administration
admin-only = Ces pages sont réservées aux administrateurs.
admin-organisations = Organisations
admin-register-organisation = Enregistrer une organisation
admin-name = Nom
admin-kind = Type
admin-country = Pays
admin-works-with = Travaille avec
admin-retention = Garde les données d'une survivante après la clôture de son dernier plan
admin-months = Mois
admin-bad-months = Indiquez un nombre entier de mois entre 1 et { $max }.
admin-changed-meanwhile = Quelqu'un a modifié cette organisation entre-temps : consultez-la de nouveau, puis enregistrez.
organisation-kind-programme = Programme
organisation-kind-government = Administration
organisation-kind-partner = Partenaire dans un pays d'origine
admin-parties-title = Personnes
admin-register-party = Enregistrer une personne qui travaille avec Homeward
admin-role = Rôle
admin-organisation = Organisation
admin-email = Courriel
admin-status = Statut
admin-active = active
admin-deactivated = désactivée
admin-time-zone = Fuseau horaire
admin-time-zone-hint = Un fuseau IANA comme Africa/Lagos ; vide, celui du programme.
admin-supervisor = Superviseur
admin-bad-email = Indiquez une adresse électronique, par exemple nom@exemple.org.
admin-no-party = Cette personne n'existe pas.
admin-invitation = Invitation
admin-invitation-hint = Un courriel avec un lien, valable une fois, par lequel la personne crée son propre jeton. Une nouvelle invitation retire les précédentes.
admin-invite = Envoyer une invitation
admin-deactivate-hint = Une personne désactivée ne peut plus se connecter : ses jetons et liens cessent aussitôt de fonctionner, et elle ne reçoit plus de rappels ni de nouvelles tâches.
admin-deactivate-reason = Pourquoi cette personne est-elle désactivée ?
admin-deactivate = Désactiver
admin-reactivate = Réactiver
admin-tokens = Jetons
admin-tokens-hint = Ce que l'on sait de chaque jeton ; les jetons eux-mêmes ne sont plus jamais montrés.
admin-issued = Émis
admin-expires = Valable jusqu'au
admin-last-used = Dernière utilisation
admin-never = jamais
admin-revoked = révoqué
admin-revoke = Révoquer
admin-revoke-all = Révoquer tous les jetons

## Consents on a plan
form-consent-record-this = Enregistrer ce consentement
form-consent-withdraw-this = Retirer ce consentement
form-confirm-withdraw-this = Je comprends : le retirer
form-consent-withdraw-return = Retirer le consentement suspend le plan : aucune étape n'avance et aucun rappel ne part tant qu'il n'est pas redonné.
form-consent-withdraw-family_contact = Le retirer empêche la médiation familiale de commencer tant qu'il n'est pas redonné.
form-consent-withdraw-data_sharing = Le retirer empêche aussitôt ce partenaire de voir ses coordonnées et de suivre le plan.
consent-not-recorded = Non enregistré
consent-data-sharing-with = Partage de ses données avec { $name }
person-her-data = Tout ce qui est conservé sur elle
person-export = Télécharger son dossier (JSON)
person-export-hint = Pour son droit d'accès : chaque donnée, note, plan et consentement qu'Homeward conserve sur elle. Le téléchargement est inscrit dans son journal d'accès.
nav-documents = Documents de voyage
nav-visits = Visites de suivi

## The standard template's steps, as the template writes them
template-standard-avr-origin_contact = Désigner une personne de contact dans la communauté d'origine
template-standard-avr-passport = Obtenir un passeport ou un laissez-passer
template-standard-avr-legal_clearance = Régler les questions juridiques en cours (séjour, témoignage, demandes d'indemnisation)
template-standard-avr-medical_check = Bilan médical et aptitude au voyage
template-standard-avr-family_mediation = Médiation familiale (seulement avec le consentement de la survivante au contact avec sa famille)
template-standard-avr-travel = Voyage vers le pays d'origine
template-standard-avr-reintegration_plan = Convenir du plan de réintégration (formation, activité, logement, scolarité)
template-follow-up = Visite de suivi { $count } ({ $days } jours après le retour)
form-conflict-resend = Non enregistré : le plan a changé entre-temps (voir ci-dessus). Ce que vous avez saisi est conservé : vérifiez-le et renvoyez-le.
admin-invited-notice = Une invitation a été envoyée à l'adresse enregistrée. Son lien fonctionne une fois ; une nouvelle invitation le retire.
consent-data-sharing-former = Partage de ses données avec un partenaire qui n'a plus d'étape
team-first-hundred = Seules les 100 premières sont listées.
template-follow-up-short = Visite de suivi { $count }
team-invite = Inviter un·e collègue à se connecter
team-invite-whom = Qui
