/** Where the config file is read from unless --config or UNIFI_BACKUP_CONFIG names another. */
export const defaultConfigFile = '/etc/unifi-backup/config.yaml';
