# Las palabras de Homeward en español: correos de recordatorio, resúmenes y páginas de los
# enlaces para socios. Los mismos identificadores y variables que en.ftl.

## Correos

mail-greeting = Hola { $name }:
mail-plan-reference = Referencia del plan: { $reference }

reminder-before-due-subject = Recordatorio: { $title } vence el { $due }
reminder-before-due-line = El paso «{ $title }» vence el { $due }.
reminder-on-due-subject = Vence hoy: { $title }
reminder-on-due-line = El paso «{ $title }» vence hoy ({ $due }).
reminder-overdue-subject = Atrasado: { $title } (vencía el { $due })
reminder-overdue-line = El paso «{ $title }» vencía el { $due }, { $days ->
        [1] hace un día.
       *[other] hace { $days } días.
    }
reminder-escalation-subject = Escalamiento: { $title } lleva { $days ->
        [1] un día
       *[other] { $days } días
    } de retraso
reminder-escalation-line = El paso «{ $title }» vencía el { $due } y lleva { $days ->
        [1] un día
       *[other] { $days } días
    } de retraso. Recibe este mensaje como supervisor del trabajador social.
reminder-reintegration-subject = Aún sin plan de reintegración un mes después de la llegada: { $title }
reminder-reintegration-line = Ha pasado un mes desde la llegada y «{ $title }» aún no está hecho. Recibe este mensaje como trabajador social del plan.
reminder-footer = Homeward le envía este recordatorio porque el paso le ha sido asignado.

link-acknowledge = Confirmar que se encarga de esta tarea
link-confirm-visit = Confirmar que la visita tuvo lugar

digest-subject = Sus tareas en Homeward: { $open } abiertas, { $overdue } atrasadas
digest-none = No tiene tareas abiertas.
digest-overdue = ATRASADA
digest-task = { $title } (plan { $reference })
digest-task-due = { $title } (plan { $reference }), vence { $due }
digest-more = + { $count } tareas más
digest-footer = Homeward le envía este resumen según el calendario que eligió.

## Páginas de los enlaces para socios

page-plan-reference = Referencia del plan
page-due = Vence
page-your-task = Su tarea
page-follow-up-visit = Visita de seguimiento
page-acknowledge-prompt = Confirme que ha visto esta tarea y que se encargará de ella.
page-acknowledge-button = Me encargo de esta tarea
page-visit-date = Fecha de la visita
page-visit-how = ¿Cómo está?
page-visit-concerns = Preocupaciones (si las hay)
page-visit-button = Confirmar la visita
page-thanks = Gracias
page-thanks-body = Quedó registrado. El trabajador social ya puede verlo.

wellbeing-good = Bien
wellbeing-fair = Regular
wellbeing-poor = Mal
wellbeing-at_risk = En riesgo

concern-safety = Seguridad
concern-health = Salud
concern-housing = Vivienda
concern-income = Ingresos
concern-education = Educación
concern-family = Familia
concern-legal = Legal
concern-stigma = Estigma
concern-other = Otro

page-visit-error-date = Indique la fecha de la visita (año-mes-día).
page-visit-error-wellbeing = Indique cómo está.
page-visit-error-concern = Elija las preocupaciones de la lista.

link-invalid = Este enlace no es válido
link-expired = Este enlace ha caducado
link-used = Este enlace ya fue utilizado
link-already-done = Esto ya está registrado
link-no-longer-open = Esta tarea ya no está abierta
link-not-yours = Esta tarea ya no le está asignada
link-rejected = No se pudo registrar
link-nothing-recorded = No se registró nada. Si necesita informar algo, contacte al trabajador social.
page-try-again-later = Inténtelo de nuevo más tarde

## Avisos de cuenta

invitation-subject = Su invitación a Homeward
invitation-line = { $admin } le ha registrado en Homeward para { $organisation }. Abra el enlace de abajo para crear su propio token de acceso. El enlace funciona una sola vez, hasta el { $expires }; nadie más ve su token.
invitation-link = Crear mi token
invitation-footer = Si no esperaba este mensaje, no abra el enlace y avise a su organización.
address-changed-subject = Su dirección de correo en Homeward ha cambiado
address-changed-line = El { $when }, { $admin } cambió la dirección a la que Homeward le escribe de { $old } a { $new }. Sus recordatorios se envían ahora allí.
organisation-changed-subject = Su organización en Homeward ha cambiado
organisation-changed-line = El { $when }, { $admin } le trasladó de { $old } a { $new } en Homeward.
notice-footer = Si usted no lo pidió, avise de inmediato a su supervisor o a su organización.

## Páginas de invitación

invite-title = Cree su token de Homeward
invite-prompt = Esto crea su propio token de acceso a Homeward. Solo se muestra una vez: cópielo en la aplicación que utiliza.
invite-button = Crear mi token
invite-token-title = Su token
invite-token-note = Manténgalo en secreto. Es válido hasta el { $expires }. Envíelo como «Authorization: Bearer» seguido del token.
invite-invalid = Esta invitación no se puede usar
invite-invalid-body = Ya se usó, otra más reciente la sustituyó o ha caducado. Pida una nueva invitación a su administrador.

## A step named by its kind (a step a social worker added is never named by its own title outside the API)
step-kind-travel-document = Documento de viaje
step-kind-travel = Viaje
step-kind-family-mediation = Mediación familiar
step-kind-origin-contact = Contacto en la comunidad de origen
step-kind-follow-up = Visita de seguimiento
step-kind-medical = Atención médica
step-kind-legal = Asunto legal
step-kind-reintegration-support = Apoyo a la reintegración
step-kind-custom = Tarea

## Consola web

sign-in-subject = Su enlace para entrar en Homeward
sign-in-line = Alguien pidió entrar en Homeward con su dirección, como { $role } de { $organisation }. El enlace de abajo funciona una sola vez, hasta el { $expires }.
sign-in-link = Entrar
sign-in-footer = Si no fue usted, no abra el enlace: no pasa nada mientras no se use.

role-social_worker = trabajador/a social
role-supervisor = supervisor/a
role-government_liaison = enlace gubernamental
role-partner_contact = contacto asociado
role-admin = administrador/a

console-skip = Ir al contenido
console-sign-out = Salir
console-language = Idioma
console-change-language = Cambiar
nav-inbox = Pendientes

sign-in-title = Entrar en Homeward
sign-in-by-link = Recibir un enlace para entrar por correo
sign-in-email = Su dirección de correo
sign-in-send = Enviarme un enlace
sign-in-by-token = O entrar con un token de acceso
sign-in-token = Su token de acceso
sign-in-token-hint = Empieza por hw_.
sign-in-with-token = Entrar
sign-in-token-wrong = Este token es desconocido, ha caducado o fue revocado. Péguelo de nuevo, pida uno nuevo a su administrador o entre con un enlace.
sign-in-email-wrong = Indique la dirección a la que Homeward le escribe, por ejemplo nombre@example.org.
sign-in-sent-title = Revise su correo
sign-in-sent = Si { $email } es la dirección de alguien registrado en Homeward, le llega un enlace para entrar. Funciona una sola vez, durante { $minutes } minutos.
sign-in-link-prompt = Pulse el botón para entrar en Homeward como { $name }. El enlace funciona una sola vez.
sign-in-link-button = Entrar
sign-in-link-invalid = Este enlace para entrar no se puede usar
sign-in-link-invalid-body = Ya se usó, otro más reciente lo reemplazó o ha caducado. Pida un enlace nuevo.
sign-in-again = Volver a entrar
session-ended = Su sesión ha terminado. Vuelva a entrar para seguir donde estaba.
refused-title = Esta petición fue rechazada
refused-foreign = El formulario no se envió desde una página de Homeward. No se cambió nada.
refused-form-token = Este formulario está caducado o pertenece a otra sesión. No se cambió nada: abra la página de nuevo y envíe el formulario otra vez.
too-many-tries = Demasiados intentos desde esta dirección. Espere { $seconds } segundos y vuelva a intentarlo.
refused-retry = Volver a pendientes

inbox-title = Pendientes
inbox-empty = Ninguna tarea coincide.
inbox-filters = Filtros
inbox-kind = Tipo
inbox-any = Todos
inbox-status = Estado
inbox-open = Abiertas (ni hechas ni canceladas)
inbox-due-from = Vence desde
inbox-due-before = Vence hasta el
inbox-overdue-only = Solo atrasadas
inbox-show = Mostrar
inbox-task = Tarea
inbox-plan = Plan
inbox-for = Para
inbox-when = Cuándo
inbox-priority = Prioridad
inbox-assignee = Asignada a
inbox-next = Página siguiente
inbox-first = Primera página
inbox-count = { $count ->
    [one] 1 tarea en esta página
   *[other] { $count } tareas en esta página
}
inbox-bad-date = Indique una fecha como año-mes-día, por ejemplo 2026-12-31.
due-overdue = { $days ->
    [0] Atrasada desde hoy
    [one] Atrasada 1 día
   *[other] Atrasada { $days } días
}
due-today = Vence hoy
due-in = { $days ->
    [one] Vence mañana
   *[other] Vence en { $days } días
}
due-on = el { $date }
due-none = Aún sin fecha
follow-up-on = Visita de seguimiento el { $date }
unreadable = [ilegible]
erased = [borrado]

status-pending = En espera
status-ready = Lista
status-in_progress = En curso
status-done = Hecha
status-blocked = Bloqueada
status-cancelled = Cancelada

priority-low = Baja
priority-normal = Normal
priority-high = Alta
priority-urgent = Urgente

document-requested = Solicitado
document-submitted_to_authority = Presentado a la autoridad
document-issued = Expedido
document-delivered = Entregado

plan-title = Plan { $reference }
plan-not-found = No hay ningún plan con este identificador que usted pueda ver.
plan-summary = Resumen
plan-status = Estado
plan-template = Plantilla
plan-origin = País de origen
plan-opened = Abierto el
plan-departed = Salida
plan-arrived = Llegada
plan-closed = Cerrado el
plan-case-worker = Responsable del caso
plan-suspended = El consentimiento al retorno está retirado: nada avanza y no sale ningún recordatorio hasta que se dé de nuevo.
plan-person = Persona
person-name = Nombre
person-born = Fecha de nacimiento
person-language = Idioma preferido
person-phone = Teléfono
person-email = Correo
person-address = Dirección
plan-goals = Objetivos
plan-consents = Consentimientos
plan-none = Nada registrado.
consent-given = Dado el { $date }
consent-withdrawn = Retirado el { $date }
consent-return = Retorno
consent-family_contact = Contacto con la familia
plan-steps = Pasos
step-assignee = Asignado a
step-due = Vence
step-depends = Espera a
step-document = Documento
step-reminders = Recordatorios
step-unassigned = Sin asignar
step-why = Motivo
reminders-sent = { $count ->
    [one] 1 enviado
   *[other] { $count } enviados
}
reminders-failed = { $count ->
    [one] 1 no entregado
   *[other] { $count } no entregados
}
plan-timeline = Cronología
timeline-today = Hoy
timeline-summary = { $steps ->
    [one] 1 paso
   *[other] { $steps } pasos
} entre el { $from } y el { $to }: { $done } hechos, { $overdue } atrasados.
timeline-milestones = Hitos
milestone-consent = Consentimiento al retorno
milestone-departure = Salida
milestone-arrival = Llegada
timeline-from = Desde
timeline-to = Vence
plan-history = Historial
history-next = Entradas siguientes
history-first = Primeras entradas
history-by-link = mediante un enlace para socios
history-when = Cuándo
history-who = Quién
history-what = Qué

plan-status-draft = Borrador
plan-status-active = Activo
plan-status-travelling = De viaje
plan-status-returned = Retornado/a
plan-status-monitoring = En seguimiento
plan-status-closed = Cerrado

event-plan_opened = Plan abierto
event-goals_set = Objetivos fijados
event-step_added = Paso añadido
event-step_removed = Paso quitado
event-step_assigned = Paso asignado
event-step_rescheduled = Paso reprogramado
event-step_dependencies_changed = Dependencias del paso cambiadas
event-step_prioritised = Prioridad del paso cambiada
event-reminder_policy_set = Regla de recordatorios fijada
event-step_started = Paso empezado
event-step_blocked = Paso bloqueado
event-step_unblocked = Paso desbloqueado
event-step_completed = Paso terminado
event-step_acknowledged = Paso recibido
event-step_cancelled = Paso cancelado
event-document_status_updated = Estado del documento actualizado
event-consent_recorded = Consentimiento registrado
event-consent_withdrawn = Consentimiento retirado
event-plan_activated = Plan activado
event-plan_suspended = Plan suspendido
event-plan_resumed = Plan reanudado
event-departure_confirmed = Salida confirmada
event-arrival_confirmed = Llegada confirmada
event-follow_up_recorded = Visita de seguimiento registrada
event-monitoring_started = Seguimiento iniciado
event-plan_closed = Plan cerrado
event-case_worker_reassigned = Responsable del caso cambiado
event-reminder_sent = Recordatorio enviado
event-step_escalated = Paso escalado
event-reminder_failed = Recordatorio no entregado

form-start = Empezar
form-complete = Marcar como hecho
form-block = Bloquear
form-block-reason = ¿Por qué está bloqueado?
form-unblock = Desbloquear
form-document = Estado del documento
form-update = Actualizar
form-visit = Registrar la visita
form-visited-on = Fecha de la visita
form-wellbeing = ¿Cómo está ella?
form-concerns = Preocupaciones planteadas
form-confirm-needed = Marque la casilla para confirmar que el plan se suspende.
form-required = Hace falta: escriba unas palabras.
form-too-long = Como máximo { $max } caracteres: acórtelo.
form-refused = No registrado: { $message }
conflict-title = Alguien cambió este plan mientras usted lo miraba
conflict-body = No se registró nada de su formulario. Abajo está el plan tal como está ahora: envíe su formulario otra vez si todavía procede.
conflict-changes = Lo que se registró desde que abrió la página:

live-changed = Esta página cambió desde que la abrió.
live-reload = Mostrar los cambios

nav-plans = Planes
plans-title = Planes
plans-empty = Ningún plan coincide.
plans-overdue-only = Solo con pasos atrasados
plans-overdue-steps = { $count ->
    [one] 1 paso atrasado
   *[other] { $count } pasos atrasados
}
plans-bad-country = Indique el país con su código ISO de dos letras, por ejemplo NG o AL.
new-plan-title = Registrar a una persona y abrir su plan
new-plan-plan = Plan
new-plan-country-hint = El país al que retorna, en código de dos letras: NG para Nigeria, AL para Albania.
new-plan-open = Registrar y abrir el plan

person-title = Expediente de la persona
person-not-found = No hay ninguna persona con este identificador cuyo expediente usted pueda ver.
person-details = Sus datos
person-reason = Motivo de la corrección
person-correct = Corregir sus datos
person-nothing-changed = No cambió nada en sus datos: cambie un campo y envíe.
person-notes = Notas del caso
person-add-note = Una nota nueva
person-save-note = Añadir la nota
person-conflict-title = Su expediente cambió mientras usted lo miraba
person-erased = Sus datos se borraron el { $date }.
person-hold = En conservación legal desde el { $date }: { $reason }
person-open-record = Su expediente

plan-milestones = Salida, llegada, cierre
form-departure = Confirmar la salida
form-departure-at = Salió el (su hora)
form-arrival = Confirmar la llegada
form-arrival-at = Llegó el (su hora)
form-close = Cerrar el plan
form-close-reason = ¿Por qué se cierra?
form-bad-time = Indique una fecha y una hora, por ejemplo 2026-04-10 06:00.
close-reason-reintegrated = Está reintegrada
close-reason-support_ended = El acompañamiento terminó
close-reason-opted_out = Ella decidió parar
close-reason-moved_away = Se mudó
close-reason-lost_contact = Se perdió el contacto
close-reason-deceased = Falleció
close-reason-other = Otro motivo

person-protection = Sus datos
person-access-log = Quién leyó sus datos
person-access-fields = Qué
person-access-through = Mediante
person-place-hold = Poner una conservación legal
person-lift = Levantar la conservación legal
person-hold-reason = Motivo (un proceso judicial, por ejemplo)
person-erase = Borrar sus datos
person-erase-warning = Borrar destruye su clave: su nombre, sus datos de contacto, sus notas y toda palabra personal de sus planes se vuelven ilegibles para siempre, en todas las copias. Las fechas y los pasos de sus planes quedan, sin ella.
person-erase-reason = Motivo
person-erase-confirm = Entiendo que no se puede deshacer
person-erase-confirm-needed = Marque la casilla para confirmar que sus datos se borran para siempre.
erasure-reason-survivor_request = Ella lo pidió
erasure-reason-registered_in_error = Se registró por error
erasure-reason-legal_obligation = La ley lo exige

search-title = Buscar a una persona
search-name = Su nombre, o parte de él
search-find = Buscar
search-none = Nadie de su organización coincide.
search-nothing = Indique un nombre, una fecha de nacimiento o ambos.

## A step's own page, and adding a step
step-change-title = Cambiar «{ $title }»
step-add-title = Añadir un paso
step-back = Volver al plan
step-change-link = Cambiar este paso
step-add-link = Añadir un paso
step-section-reschedule = Cuándo vence
step-section-assign = Quién lo hace
step-section-depends = Qué espera
step-section-remove = Quitar el paso
step-section-cancel = Cancelar el paso
form-due-at = En una fecha
form-due-after = Unos días después de un hito
form-due-none = Sin fecha límite
form-due-at-label = Fecha y hora ({ $zone })
form-due-days = Días después del hito
form-due-milestone = El hito
form-follow-up-on = Visita de seguimiento el (opcional)
form-group = O un grupo que puede tomarlo (opcional)
form-depends-none = No hay otro paso que esperar.
form-reminders-before = Recordar este número de días antes del vencimiento (vacío: no antes)
form-reminders-on-due = Recordar el día del vencimiento
form-reminders-every = Con retraso, recordar cada este número de días (vacío: nunca)
form-reminders-escalate = Avisar al supervisor tras este número de días de retraso (vacío: nunca)
form-remove-reason = ¿Por qué se quita?
form-remove = Quitar este paso
form-cancel-reason = ¿Por qué se cancela?
form-cancel = Cancelar este paso
form-save = Guardar
form-add-step = Añadir el paso
form-kind = Tipo de paso
form-title = Título
form-bad-days = Indique un número entero de días entre { $from } y { $to }.
form-bad-zone = Esa zona horaria no se conoce: indique una como Europe/Madrid.
form-bad-date = Indique una fecha, por ejemplo 2026-04-10.
form-choose = Elija una de las opciones ofrecidas.
form-required-number = Indique un número de días.
form-too-many = Como mucho { $max }: elija menos.
milestone-plan_opened = Apertura del plan

## A supervisor's page
nav-team = Equipo
nav-admin = Administración
team-title = Su equipo
team-supervisors-only = Esta página es para supervisores.
team-late = Pasos atrasados, por trabajador social
team-nothing-late = Ningún paso de su organización está atrasado.
team-step = Paso
team-survivor = Superviviente
team-escalated = escalado a usted
team-hand-over = Traspasar casos
team-hand-over-hint = Cada plan abierto de un trabajador social pasa a otro de su organización; los planes cerrados conservan su responsable.
team-from = De
team-to = A
team-inactive = desactivado
team-hand-over-button = Traspasar los casos
team-choose-both = Elija de quién y a quién pasan los casos.
team-same-worker = Elija dos trabajadores sociales distintos.
team-handed-over = { $count ->
    [0] No se traspasó ningún plan abierto.
    [one] Se traspasó un plan.
   *[other] Se traspasaron { $count } planes.
}
team-erasures = Datos que se borrarán en 90 días
team-erased-on = se borran el { $date }
team-on-hold = en retención legal
team-review = Personas que revisar
team-review-hint = Nadie ha registrado nada sobre ellas en un año y ningún plan suyo está abierto: la regla de conservación no las borra; decida usted.
team-last-activity = última actividad { $date }, { $count ->
    [0] ningún plan en borrador
    [one] un plan en borrador
   *[other] { $count } planes en borrador
}
team-none = Ninguna.

## Administration
admin-title = Administración
admin-only = Estas páginas son para administradores.
admin-organisations = Organizaciones
admin-register-organisation = Registrar una organización
admin-name = Nombre
admin-kind = Tipo
admin-country = País
admin-works-with = Trabaja con
admin-retention = Conserva los datos de una superviviente tras cerrarse su último plan
admin-months = Meses
admin-bad-months = Indique un número entero de meses entre 1 y { $max }.
admin-changed-meanwhile = Alguien cambió esta organización mientras tanto: véala de nuevo y guarde.
organisation-kind-programme = Programa
organisation-kind-government = Oficina del gobierno
organisation-kind-partner = Socio en un país de origen
admin-parties-title = Personas
admin-register-party = Registrar a una persona que trabaja con Homeward
admin-role = Función
admin-organisation = Organización
admin-email = Correo electrónico
admin-status = Estado
admin-active = activa
admin-deactivated = desactivada
admin-time-zone = Zona horaria
admin-time-zone-hint = Una zona IANA como Africa/Lagos; vacía, la del programa.
admin-supervisor = Supervisor
admin-bad-email = Indique una dirección de correo, por ejemplo nombre@ejemplo.org.
admin-no-party = Esa persona no existe.
admin-invitation = Invitación
admin-invitation-hint = Un correo con un enlace, válido una vez, con el que la persona crea su propio token. Una nueva invitación retira las anteriores.
admin-invite = Enviar una invitación
admin-deactivate-hint = Una persona desactivada ya no puede entrar: sus tokens y enlaces dejan de funcionar al instante, y no recibe recordatorios ni tareas nuevas.
admin-deactivate-reason = ¿Por qué se desactiva a esta persona?
admin-deactivate = Desactivar
admin-reactivate = Reactivar
admin-tokens = Tokens
admin-tokens-hint = Lo que se sabe de cada token; los tokens mismos no se vuelven a mostrar.
admin-issued = Emitido
admin-expires = Válido hasta
admin-last-used = Último uso
admin-never = nunca
admin-revoked = revocado
admin-revoke = Revocar
admin-revoke-all = Revocar todos los tokens

## Consents on a plan
form-consent-record-this = Registrar este consentimiento
form-consent-withdraw-this = Retirar este consentimiento
form-confirm-withdraw-this = Entiendo: retirarlo
form-consent-withdraw-return = Retirar el consentimiento suspende el plan: ningún paso avanza y no sale ningún recordatorio hasta que se vuelva a dar.
form-consent-withdraw-family_contact = Retirarlo impide que empiece la mediación familiar hasta que se vuelva a dar.
form-consent-withdraw-data_sharing = Retirarlo impide al instante que este socio vea sus datos y siga el plan.
consent-not-recorded = No registrado
consent-data-sharing-with = Compartir sus datos con { $name }
person-her-data = Todo lo que se guarda sobre ella
person-export = Descargar su expediente (JSON)
person-export-hint = Para su derecho de acceso: cada dato, nota, plan y consentimiento que Homeward guarda sobre ella. La descarga queda registrada en su registro de accesos.
nav-documents = Documentos de viaje
nav-visits = Visitas de seguimiento

## The standard template's steps, as the template writes them
template-standard-avr-origin_contact = Designar una persona de contacto en la comunidad de origen
template-standard-avr-passport = Obtener un pasaporte o salvoconducto
template-standard-avr-legal_clearance = Resolver los asuntos legales pendientes (residencia, testimonio, reclamaciones de indemnización)
template-standard-avr-medical_check = Revisión médica y aptitud para viajar
template-standard-avr-family_mediation = Mediación familiar (solo con el consentimiento de la superviviente al contacto familiar)
template-standard-avr-travel = Viaje al país de origen
template-standard-avr-reintegration_plan = Acordar el plan de reintegración (formación, negocio, vivienda, escolarización)
template-follow-up = Visita de seguimiento { $count } ({ $days } días después del regreso)
form-conflict-resend = No registrado: el plan cambió mientras tanto (vea arriba). Lo que escribió se conserva: revíselo y envíelo de nuevo.
admin-invited-notice = Se envió una invitación a la dirección registrada. Su enlace funciona una vez; una nueva lo retira.
consent-data-sharing-former = Compartir sus datos con un socio que ya no tiene ningún paso
team-first-hundred = Solo se listan las 100 primeras.
template-follow-up-short = Visita de seguimiento { $count }
team-invite = Invitar a un colega a entrar
team-invite-whom = A quién
