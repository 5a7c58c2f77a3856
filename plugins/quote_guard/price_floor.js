// 报价明细单价不得低于产品最低限价（经理角色除外）。
if (!record.product) return;
const changed = !previous || previous.unit_price !== record.unit_price || previous.product !== record.product;
if (!changed) return;
const managers = String(@json{manager_roles}).split(',').map((role) => role.trim());
if (user.is_admin || user.roles.some((role) => managers.includes(role))) return;
const product = get('product', record.product);
if (product && product.min_price != null && Number(record.unit_price) < Number(product.min_price)) {
  reject('unit_price', '单价低于产品最低限价 ' + product.min_price + ' 元');
}
