//! Typed ARM and Microsoft Graph client (to be written).
