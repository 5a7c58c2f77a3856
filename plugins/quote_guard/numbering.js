// 对外报价编号：前缀-客户简称-报价单号，创建时给出，之后不变。
if (previous) {
  record.quote_no = previous.quote_no;
  return;
}
const customer = record.customer ? get('customer', record.customer) : null;
const name = customer ? (customer.short_name || customer.code || customer.name) : 'C' + record.customer;
record.quote_no = [@json{prefix}, name, record.code].filter((part) => part).join('-');
