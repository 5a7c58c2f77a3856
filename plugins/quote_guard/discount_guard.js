// 整单折扣：不超过上限；超过审批线只有经理角色可以给（只在折扣变动时检查）。
const discount = Number(record.discount_rate || 0);
const changed = !previous || Number(previous.discount_rate || 0) !== discount;
if (!changed) return;
const max = @json{max_discount};
if (discount > max) reject('discount_rate', '整单折扣不能超过 ' + max + '%');
const managers = String(@json{manager_roles}).split(',').map((role) => role.trim());
const isManager = user.is_admin || user.roles.some((role) => managers.includes(role));
if (discount > @json{manager_discount} && !isManager) {
  reject('discount_rate', '超过 ' + @json{manager_discount} + '% 的折扣需由经理给出');
}
