// 行动完成时记分，一个行动只记一次（从未完成变为完成时）。
const done = record.status === 'done';
const wasDone = previous ? previous.status === 'done' : false;
if (!done || wasDone || !(record.assigned_to || record.owner)) return;
const staff = record.assigned_to || record.owner;
create('points_entry', {
  staff,
  owner: staff,
  points: Math.round(@json{activity_points}),
  reason: 'activity',
  source_entity: 'activity',
  source_id: record.id,
  occurred_on: record.activity_date || undefined,
  note: '完成行动 ' + record.subject,
});
