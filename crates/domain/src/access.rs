//! Who may do what. The client always comes from the caller's key, never from a body.

use serde::{Deserialize, Serialize};

/// The role of a client's API key or panel user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The client's own administrator: everything within the client.
    ClientAdmin,
    /// Customer support: reads everything, acts on orders (cancel, remark), changes no
    /// masters or settings.
    ClientSupport,
    /// Marketplace connectors, WMS and scripts: masters, uploads, orders, stock; no settings.
    Integration,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::ClientAdmin, Role::ClientSupport, Role::Integration];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::ClientAdmin => "client_admin",
            Role::ClientSupport => "client_support",
            Role::Integration => "integration",
        }
    }

    pub fn parse(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| {
                format!("must be one of client_admin, client_support, integration, got {text:?}")
            })
    }

    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::Read | Permission::ActOnOrders => true,
            Permission::WriteMasters | Permission::MoveStock => {
                matches!(self, Role::ClientAdmin | Role::Integration)
            }
            Permission::WriteSettings => self == Role::ClientAdmin,
        }
    }
}

/// What a client-scoped request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read masters, settings, stock and orders.
    Read,
    /// Cancel and remark orders.
    ActOnOrders,
    /// Create or change channels, SKUs, suppliers, customers; upload master files.
    WriteMasters,
    /// Change the client's settings.
    WriteSettings,
    /// Receive, QC, count, lose, find and move stock between pools.
    MoveStock,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_reads_and_acts_on_orders_but_changes_no_masters_or_settings() {
        assert!(Role::ClientSupport.allows(Permission::Read));
        assert!(Role::ClientSupport.allows(Permission::ActOnOrders));
        assert!(!Role::ClientSupport.allows(Permission::WriteMasters));
        assert!(!Role::ClientSupport.allows(Permission::WriteSettings));
        assert!(!Role::ClientSupport.allows(Permission::MoveStock));
    }

    #[test]
    fn only_client_admin_changes_settings() {
        assert!(Role::ClientAdmin.allows(Permission::WriteSettings));
        assert!(!Role::Integration.allows(Permission::WriteSettings));
        assert!(Role::Integration.allows(Permission::WriteMasters));
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Role::parse("admin").is_err());
    }
}
