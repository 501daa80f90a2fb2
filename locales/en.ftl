# Homeward's words in English: reminder emails, digests and the pages behind partner links.
# One file per language (en.ftl, fr.ftl, es.ftl), each with the same message ids and variables.
# Dates arrive formatted in the reader's time zone; plans are named by their reference, never by
# the person.

## Emails

mail-greeting = Hello { $name },
mail-plan-reference = Plan reference: { $reference }

reminder-before-due-subject = Reminder: { $title } is due on { $due }
reminder-before-due-line = The step "{ $title }" is due on { $due }.
reminder-on-due-subject = Due today: { $title }
reminder-on-due-line = The step "{ $title }" is due today ({ $due }).
reminder-overdue-subject = Overdue: { $title } (due { $due })
reminder-overdue-line = The step "{ $title }" was due on { $due }: { $days ->
        [1] one day ago.
       *[other] { $days } days ago.
    }
reminder-escalation-subject = Escalation: { $title } is { $days ->
        [1] one day
       *[other] { $days } days
    } overdue
reminder-escalation-line = The step "{ $title }" was due on { $due } and is { $days ->
        [1] one day
       *[other] { $days } days
    } overdue. You are receiving this as the case worker's supervisor.
reminder-reintegration-subject = No reintegration plan yet, a month after arrival: { $title }
reminder-reintegration-line = A month has passed since the arrival and "{ $title }" is not done yet. You are receiving this as the plan's case worker.
reminder-footer = Homeward sends this reminder because the step is assigned to you.

link-acknowledge = Acknowledge this task
link-confirm-visit = Confirm that the visit took place

digest-subject = Your Homeward tasks: { $open } open, { $overdue } overdue
digest-none = You have no open tasks.
digest-overdue = OVERDUE
digest-task = { $title } (plan { $reference })
digest-task-due = { $title } (plan { $reference }), due { $due }
digest-more = + { $count } more tasks
digest-footer = Homeward sends this digest on the schedule you chose.

## Partner pages

page-plan-reference = Plan reference
page-due = Due
page-your-task = Your task
page-follow-up-visit = Follow-up visit
page-acknowledge-prompt = Please confirm that you have seen this task and will take care of it.
page-acknowledge-button = I acknowledge this task
page-visit-date = Date of the visit
page-visit-how = How is she doing?
page-visit-concerns = Concerns (if any)
page-visit-button = Confirm the visit
page-thanks = Thank you
page-thanks-body = This has been recorded. The case worker can see it now.

wellbeing-good = Good
wellbeing-fair = Fair
wellbeing-poor = Poor
wellbeing-at_risk = At risk

concern-safety = Safety
concern-health = Health
concern-housing = Housing
concern-income = Income
concern-education = Education
concern-family = Family
concern-legal = Legal
concern-stigma = Stigma
concern-other = Other

page-visit-error-date = Give the date of the visit (year-month-day).
page-visit-error-wellbeing = Say how she is doing.
page-visit-error-concern = Choose concerns from the list.

link-invalid = This link is not valid
link-expired = This link has expired
link-used = This link was already used
link-already-done = This was already recorded
link-no-longer-open = This task is no longer open
link-not-yours = This task is no longer assigned to you
link-rejected = This could not be recorded
link-nothing-recorded = Nothing was recorded. If you need to report something, please contact the case worker.
page-try-again-later = Please try again later

## Account notices

invitation-subject = Your invitation to Homeward
invitation-line = { $admin } has registered you in Homeward for { $organisation }. Open the link below to create your own access token. The link works once, until { $expires }; nobody else sees your token.
invitation-link = Create my token
invitation-footer = If you did not expect this, do not open the link and tell your organisation.
address-changed-subject = Your Homeward email address was changed
address-changed-line = On { $when }, { $admin } changed the address Homeward writes to you at from { $old } to { $new }. Your reminders now go there.
organisation-changed-subject = Your Homeward organisation was changed
organisation-changed-line = On { $when }, { $admin } moved you from { $old } to { $new } in Homeward.
notice-footer = If you did not ask for this, tell your supervisor or your organisation at once.

## Invitation pages

invite-title = Create your Homeward token
invite-prompt = This creates your own access token for Homeward. It is shown once: copy it into the application you use.
invite-button = Create my token
invite-token-title = Your token
invite-token-note = Keep it secret. It is valid until { $expires }. Send it as "Authorization: Bearer" followed by the token.
invite-invalid = This invitation cannot be used
invite-invalid-body = It was already used, a newer one replaced it, or it has expired. Ask your administrator for a new invitation.

## A step named by its kind (a step a social worker added is never named by its own title outside the API)
step-kind-travel-document = Travel document
step-kind-travel = Travel
step-kind-family-mediation = Family mediation
step-kind-origin-contact = Contact in the community of origin
step-kind-follow-up = Follow-up visit
step-kind-medical = Medical care
step-kind-legal = Legal matter
step-kind-reintegration-support = Reintegration support
step-kind-custom = Task
