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
