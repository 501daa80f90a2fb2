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

## Web console

sign-in-subject = Your Homeward sign-in link
sign-in-line = Someone asked to sign in to Homeward with your address, as { $role } of { $organisation }. The link below works once, until { $expires }.
sign-in-link = Sign in
sign-in-footer = If this was not you, do not open the link: nothing happens unless it is used.

role-social_worker = social worker
role-supervisor = supervisor
role-government_liaison = government liaison
role-partner_contact = partner contact
role-admin = administrator

console-skip = Skip to the content
console-sign-out = Sign out
console-language = Language
console-change-language = Change
nav-inbox = Inbox

sign-in-title = Sign in to Homeward
sign-in-by-link = Get a sign-in link by email
sign-in-email = Your email address
sign-in-send = Email me a link
sign-in-by-token = Or sign in with an access token
sign-in-token = Your access token
sign-in-token-hint = It starts with hw_.
sign-in-with-token = Sign in
sign-in-token-wrong = This token is unknown, expired or revoked. Paste it again, ask your administrator for a new one, or sign in with a link.
sign-in-email-wrong = Give the email address Homeward writes to you at, such as name@example.org.
sign-in-sent-title = Check your email
sign-in-sent = If { $email } is the address of someone registered in Homeward, a sign-in link is on its way. It works once, within { $minutes } minutes.
sign-in-link-prompt = Press the button to sign in to Homeward as { $name }. The link works once.
sign-in-link-button = Sign in
sign-in-link-invalid = This sign-in link cannot be used
sign-in-link-invalid-body = It was already used, a newer one replaced it, or it has expired. Ask for a new link.
sign-in-again = Sign in again
session-ended = Your session has ended. Sign in again to go on where you were.
refused-title = This request was refused
refused-foreign = The form was not sent from a page of Homeward. Nothing was changed.
refused-form-token = This form is out of date or belongs to another session. Nothing was changed: open the page again and send the form once more.
too-many-tries = Too many tries from this address. Wait { $seconds } seconds, then try again.
refused-retry = Back to the inbox

inbox-title = Inbox
inbox-empty = No task matches.
inbox-filters = Filters
inbox-kind = Kind
inbox-any = Any
inbox-status = Status
inbox-open = Open (not done, not cancelled)
inbox-due-from = Due from
inbox-due-before = Due until
inbox-overdue-only = Overdue only
inbox-show = Show
inbox-task = Task
inbox-plan = Plan
inbox-for = For
inbox-when = When
inbox-priority = Priority
inbox-assignee = Assigned to
inbox-next = Next page
inbox-first = First page
inbox-count = { $count ->
    [one] 1 task on this page
   *[other] { $count } tasks on this page
}
inbox-bad-date = Give a date as year-month-day, such as 2026-12-31.
due-overdue = { $days ->
    [0] Overdue since today
    [one] Overdue by 1 day
   *[other] Overdue by { $days } days
}
due-today = Due today
due-in = { $days ->
    [one] Due tomorrow
   *[other] Due in { $days } days
}
due-on = on { $date }
due-none = No due date yet
follow-up-on = Follow-up visit on { $date }
unreadable = [cannot be read]
erased = [erased]

status-pending = Waiting
status-ready = Ready
status-in_progress = In progress
status-done = Done
status-blocked = Blocked
status-cancelled = Cancelled

priority-low = Low
priority-normal = Normal
priority-high = High
priority-urgent = Urgent

document-requested = Requested
document-submitted_to_authority = Submitted to the authority
document-issued = Issued
document-delivered = Delivered

plan-title = Plan { $reference }
plan-not-found = There is no plan with this id that you may see.
plan-summary = Summary
plan-status = Status
plan-template = Template
plan-origin = Country of origin
plan-opened = Opened
plan-departed = Departed
plan-arrived = Arrived
plan-closed = Closed
plan-case-worker = Case worker
plan-suspended = Consent to return is withdrawn: nothing moves and no reminders go out until it is given again.
plan-person = Person
person-name = Name
person-born = Date of birth
person-language = Preferred language
person-phone = Phone
person-email = Email
person-address = Address
plan-goals = Goals
plan-consents = Consents
plan-none = None recorded.
consent-given = Given on { $date }
consent-withdrawn = Withdrawn on { $date }
consent-return = Return
consent-family_contact = Contact with the family
plan-steps = Steps
step-assignee = Assigned to
step-due = Due
step-depends = Waits for
step-document = Document
step-reminders = Reminders
step-unassigned = Not assigned
step-why = Why
reminders-sent = { $count ->
    [one] 1 sent
   *[other] { $count } sent
}
reminders-failed = { $count ->
    [one] 1 could not be delivered
   *[other] { $count } could not be delivered
}
plan-timeline = Timeline
timeline-today = Today
timeline-summary = { $steps ->
    [one] 1 step
   *[other] { $steps } steps
} between { $from } and { $to }: { $done } done, { $overdue } overdue.
timeline-milestones = Milestones
milestone-consent = Consent to return
milestone-departure = Departure
milestone-arrival = Arrival
timeline-from = From
timeline-to = Due
plan-history = History
history-next = Later entries
history-first = First entries
history-by-link = through a partner link
history-when = When
history-who = Who
history-what = What

plan-status-draft = Draft
plan-status-active = Active
plan-status-travelling = Travelling
plan-status-returned = Returned
plan-status-monitoring = In follow-up
plan-status-closed = Closed

event-plan_opened = Plan opened
event-goals_set = Goals set
event-step_added = Step added
event-step_removed = Step removed
event-step_assigned = Step assigned
event-step_rescheduled = Step rescheduled
event-step_dependencies_changed = Step's dependencies changed
event-step_prioritised = Step's priority changed
event-reminder_policy_set = Reminder policy set
event-step_started = Step started
event-step_blocked = Step blocked
event-step_unblocked = Step unblocked
event-step_completed = Step completed
event-step_acknowledged = Step acknowledged
event-step_cancelled = Step cancelled
event-document_status_updated = Document status updated
event-consent_recorded = Consent recorded
event-consent_withdrawn = Consent withdrawn
event-plan_activated = Plan activated
event-plan_suspended = Plan suspended
event-plan_resumed = Plan resumed
event-departure_confirmed = Departure confirmed
event-arrival_confirmed = Arrival confirmed
event-follow_up_recorded = Follow-up visit recorded
event-monitoring_started = Follow-up started
event-plan_closed = Plan closed
event-case_worker_reassigned = Case worker changed
event-reminder_sent = Reminder sent
event-step_escalated = Step escalated
event-reminder_failed = Reminder not delivered

form-start = Start
form-complete = Mark as done
form-block = Block
form-block-reason = Why is it blocked?
form-unblock = Unblock
form-document = Document status
form-update = Update
form-visit = Record the visit
form-visited-on = Date of the visit
form-wellbeing = How is she doing?
form-concerns = Concerns raised
form-confirm-needed = Tick the box to confirm that the plan is to be suspended.
form-required = This is needed: write a few words.
form-too-long = At most { $max } characters: shorten it.
form-refused = Not recorded: { $message }
conflict-title = Someone changed this plan while you were looking at it
conflict-body = Nothing from your form was recorded. The plan as it is now is below: send your form again if it still applies.
conflict-changes = What was recorded since you opened the page:

live-changed = This page has changed since you opened it.
live-reload = Show the changes

nav-plans = Plans
plans-title = Plans
plans-empty = No plan matches.
plans-overdue-only = With overdue steps only
plans-overdue-steps = { $count ->
    [one] 1 step overdue
   *[other] { $count } steps overdue
}
plans-bad-country = Give the country as its two-letter ISO code, such as NG or AL.
new-plan-title = Register a survivor and open her plan
new-plan-plan = Plan
new-plan-country-hint = Where she returns to, as a two-letter code: NG for Nigeria, AL for Albania.
new-plan-open = Register and open the plan

person-title = Survivor's record
person-not-found = There is no survivor with this id whose record you may see.
person-details = Her details
person-reason = Why they are corrected
person-correct = Correct her details
person-nothing-changed = Nothing was changed in her details: change a field, then send.
person-notes = Case notes
person-add-note = A new note
person-save-note = Add the note
person-conflict-title = Her record was changed while you were looking at it
person-erased = Her data was erased on { $date }.
person-hold = On legal hold since { $date }: { $reason }
person-open-record = Her record

plan-milestones = Departure, arrival, closing
form-departure = Confirm the departure
form-departure-at = Departed at (your time)
form-arrival = Confirm the arrival
form-arrival-at = Arrived at (your time)
form-close = Close the plan
form-close-reason = Why is it closed?
form-bad-time = Give a date and time, such as 2026-04-10 06:00.
close-reason-reintegrated = She is reintegrated
close-reason-support_ended = The support ended
close-reason-opted_out = She chose to stop
close-reason-moved_away = She moved away
close-reason-lost_contact = Contact was lost
close-reason-deceased = She died
close-reason-other = Another reason

person-protection = Her data
person-access-log = Who read her data
person-access-fields = What
person-access-through = Through
person-place-hold = Place a legal hold
person-lift = Lift the legal hold
person-hold-reason = Why (a court case, say)
person-erase = Erase her data
person-erase-warning = Erasing destroys her key: her name, contacts, notes and every personal word in her plans become unreadable for good, in every copy. Her plans' dates and steps stay, without her.
person-erase-reason = Why
person-erase-confirm = I understand that this cannot be undone
person-erase-confirm-needed = Tick the box to confirm that her data is to be erased for good.
erasure-reason-survivor_request = She asked for it
erasure-reason-registered_in_error = She was registered in error
erasure-reason-legal_obligation = The law requires it

search-title = Find a survivor
search-name = Her name, or part of it
search-find = Find
search-none = Nobody of your organisation matches.
search-nothing = Give a name, a date of birth, or both.

## A step's own page, and adding a step
step-change-title = Change “{ $title }”
step-add-title = Add a step
step-back = Back to the plan
step-change-link = Change this step
step-add-link = Add a step
step-section-reschedule = When it is due
step-section-assign = Who does it
step-section-depends = What it waits for
step-section-remove = Remove the step
step-section-cancel = Cancel the step
form-due-at = On a date
form-due-after = Some days after a milestone
form-due-none = No due date
form-due-at-label = Date and time ({ $zone })
form-due-days = Days after the milestone
form-due-milestone = The milestone
form-follow-up-on = Follow-up visit on (optional)
form-group = Or a group that may take it (optional)
form-depends-none = There is no other step to wait for.
form-reminders-before = Remind this many days before the due date (empty: not before)
form-reminders-on-due = Remind on the due date
form-reminders-every = Once overdue, remind every this many days (empty: never)
form-reminders-escalate = Tell the supervisor after this many days overdue (empty: never)
form-remove-reason = Why is it removed?
form-remove = Remove this step
form-cancel-reason = Why is it cancelled?
form-cancel = Cancel this step
form-save = Save
form-add-step = Add the step
form-kind = Kind of step
form-title = Title
form-bad-days = Give a whole number of days from { $from } to { $to }.
form-bad-zone = That time zone is not known: give one such as Europe/London.
form-bad-date = Give a date, such as 2026-04-10.
form-choose = Choose one of those offered.
form-required-number = Give a number of days.
form-too-many = At most { $max }: choose fewer.
milestone-plan_opened = Opening of the plan

## A supervisor's page
nav-team = Team
nav-admin = Administration
team-title = Your team
team-supervisors-only = This page is for supervisors.
team-late = Late steps, by case worker
team-nothing-late = No step of your organisation is late.
team-step = Step
team-survivor = Survivor
team-escalated = escalated to you
team-hand-over = Hand cases over
team-hand-over-hint = Every open plan of one social worker goes to another of your organisation; closed plans keep their case worker.
team-from = From
team-to = To
team-inactive = deactivated
team-hand-over-button = Hand the cases over
team-choose-both = Choose whom the cases go from and to.
team-same-worker = Choose two different social workers.
team-handed-over = { $count ->
    [0] No open plan was handed over.
    [one] One plan was handed over.
   *[other] { $count } plans were handed over.
}
team-erasures = Data to be erased within 90 days
team-erased-on = erased on { $date }
team-on-hold = on legal hold
team-review = Survivors to review
team-review-hint = Nobody has recorded anything about them for a year, and no plan of theirs is open: the retention rule does not erase them; decide whether to.
team-last-activity = last activity { $date }, { $count ->
    [0] no draft plan
    [one] one draft plan
   *[other] { $count } draft plans
}
team-none = None.

## Administration
admin-title = Administration
admin-only = These pages are for administrators.
admin-organisations = Organisations
admin-register-organisation = Register an organisation
admin-name = Name
admin-kind = Kind
admin-country = Country
admin-works-with = Works with
admin-retention = Keeps a survivor's data after her last plan closes
admin-months = Months
admin-bad-months = Give a whole number of months from 1 to { $max }.
admin-changed-meanwhile = Someone changed this organisation meanwhile: look at it again, then save.
organisation-kind-programme = Programme
organisation-kind-government = Government office
organisation-kind-partner = Partner in a country of origin
admin-parties-title = People
admin-register-party = Register a person who works with Homeward
admin-role = Role
admin-organisation = Organisation
admin-email = Email
admin-status = Status
admin-active = active
admin-deactivated = deactivated
admin-time-zone = Time zone
admin-time-zone-hint = An IANA time zone such as Africa/Lagos; left empty, the programme's.
admin-supervisor = Supervisor
admin-bad-email = Give an email address, such as name@example.org.
admin-no-party = There is no such person.
admin-invitation = Invitation
admin-invitation-hint = An email with a link, valid once, through which they create their own token. A new invitation withdraws the earlier ones.
admin-invite = Send an invitation
admin-deactivate-hint = A deactivated person can no longer sign in: their tokens and links stop working at once, and they get no reminders or new duties.
admin-deactivate-reason = Why is this person deactivated?
admin-deactivate = Deactivate
admin-reactivate = Reactivate
admin-tokens = Tokens
admin-tokens-hint = What is known of each token; the tokens themselves are never shown again.
admin-issued = Issued
admin-expires = Valid until
admin-last-used = Last used
admin-never = never
admin-revoked = revoked
admin-revoke = Revoke
admin-revoke-all = Revoke every token

## Consents on a plan
form-consent-record-this = Record this consent
form-consent-withdraw-this = Withdraw this consent
form-confirm-withdraw-this = I understand: withdraw it
form-consent-withdraw-return = Withdrawing consent suspends the plan: no step moves and no reminder goes out until consent is given again.
form-consent-withdraw-family_contact = Withdrawing it stops family mediation from starting until it is given again.
form-consent-withdraw-data_sharing = Withdrawing it stops this partner seeing her details and following the plan at once.
consent-not-recorded = Not recorded
consent-data-sharing-with = Sharing her data with { $name }
person-her-data = Everything held about her
person-export = Download her record (JSON)
person-export-hint = For her right of access: every detail, note, plan and consent Homeward holds about her. The download is recorded in her access log.
nav-documents = Travel documents
nav-visits = Follow-up visits

## The standard template's steps, as the template writes them
template-standard-avr-origin_contact = Designate a contact person in the community of origin
template-standard-avr-passport = Obtain a passport or laissez-passer
template-standard-avr-legal_clearance = Clear pending legal matters (residence, testimony, compensation claims)
template-standard-avr-medical_check = Medical check and fitness to travel
template-standard-avr-family_mediation = Family mediation (only with the survivor's consent to family contact)
template-standard-avr-travel = Travel to the country of origin
template-standard-avr-reintegration_plan = Agree the reintegration plan (training, business, housing, schooling)
template-follow-up = Follow-up visit { $count } ({ $days } days after return)
form-conflict-resend = Not recorded: the plan changed meanwhile (see above). What you typed is kept: check it and send it again.
admin-invited-notice = An invitation was sent to the address they are registered with. Its link works once; a new one withdraws it.
consent-data-sharing-former = Sharing her data with a partner who no longer has a step
team-first-hundred = Only the first 100 are listed.
template-follow-up-short = Follow-up visit { $count }
team-invite = Invite a colleague to sign in
team-invite-whom = Whom
