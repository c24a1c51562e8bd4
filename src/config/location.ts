/** Where the config file is read from unless --config or UNIFI_BACKUP_CONFIG names another. */
export const defaultConfigFile = '/etc/unifi-backup/config.yaml';

/** Where `notify` reads its aliases unless --config or UNIFI_BACKUP_NOTIFY_CONFIG names another file. */
export const defaultNotifyFile = '/etc/unifi-backup/notify.yaml';
