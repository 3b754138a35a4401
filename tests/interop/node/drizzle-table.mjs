// The Drizzle adapter's table, for cli.mjs and bench.mjs: the same columns as
// @shopify/shopify-app-session-storage-drizzle/src/schemas/*.schema.ts (the package does
// not export them), with the table name chosen at run time.

export async function drizzleTable(dialect, table) {
  if (dialect === 'postgresql') {
    const {bigint, boolean, pgTable, text, timestamp} = await import('drizzle-orm/pg-core');
    return pgTable(table, {
      id: text('id').primaryKey(), shop: text('shop').notNull(), state: text('state').notNull(),
      isOnline: boolean('isOnline').default(false).notNull(), scope: text('scope'),
      expires: timestamp('expires', {mode: 'date'}), accessToken: text('accessToken').notNull(),
      userId: bigint('userId', {mode: 'number'}), firstName: text('firstName'), lastName: text('lastName'),
      email: text('email'), accountOwner: boolean('accountOwner'), locale: text('locale'),
      collaborator: boolean('collaborator'), emailVerified: boolean('emailVerified'),
      refreshToken: text('refreshToken'), refreshTokenExpires: timestamp('refreshTokenExpires', {mode: 'date'}),
    });
  }
  if (dialect === 'mysql') {
    const {bigint, boolean, mysqlTable, text, timestamp, varchar} = await import('drizzle-orm/mysql-core');
    return mysqlTable(table, {
      id: varchar('id', {length: 255}).primaryKey(), shop: text('shop').notNull(), state: text('state').notNull(),
      isOnline: boolean('isOnline').default(false).notNull(), scope: text('scope'),
      expires: timestamp('expires', {mode: 'date'}), accessToken: text('accessToken').notNull(),
      userId: bigint('userId', {mode: 'number'}), firstName: text('firstName'), lastName: text('lastName'),
      email: text('email'), accountOwner: boolean('accountOwner'), locale: text('locale'),
      collaborator: boolean('collaborator'), emailVerified: boolean('emailVerified'),
      refreshToken: text('refreshToken'), refreshTokenExpires: timestamp('refreshTokenExpires', {mode: 'date'}),
    });
  }
  const {blob, integer, sqliteTable, text} = await import('drizzle-orm/sqlite-core');
  return sqliteTable(table, {
    id: text('id').primaryKey(), shop: text('shop').notNull(), state: text('state').notNull(),
    isOnline: integer('isOnline', {mode: 'boolean'}).notNull().default(false), scope: text('scope'),
    expires: text('expires'), accessToken: text('accessToken').notNull(),
    userId: blob('userId', {mode: 'bigint'}), firstName: text('firstName'), lastName: text('lastName'),
    email: text('email'), accountOwner: integer('accountOwner', {mode: 'boolean'}), locale: text('locale'),
    collaborator: integer('collaborator', {mode: 'boolean'}),
    emailVerified: integer('emailVerified', {mode: 'boolean'}),
    refreshToken: text('refreshToken'), refreshTokenExpires: text('refreshTokenExpires'),
  });
}
