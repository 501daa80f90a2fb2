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
