/// The dashboard's static files (see DashboardPage/Script/Styles.swift).
enum DashboardAssets {}
