-- One database per service (each service owns its data and runs its own migrations).
CREATE DATABASE social OWNER patto;
CREATE DATABASE building OWNER patto;
CREATE DATABASE culture OWNER patto;
CREATE DATABASE employment OWNER patto;
CREATE DATABASE taxes OWNER patto;
CREATE DATABASE environment OWNER patto;
CREATE DATABASE publicworks OWNER patto;
