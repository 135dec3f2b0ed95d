-- Re:Match project database schema (PostgreSQL dialect), generated from rematch_pipeline/db/tables.py.
-- The schema is created by the Alembic migrations (`rematch db upgrade`); this file is for reading.

CREATE TABLE audit_events (
	id SERIAL NOT NULL,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	actor VARCHAR(64) NOT NULL,
	event VARCHAR(64) NOT NULL,
	subject VARCHAR(128),
	details JSON,
	PRIMARY KEY (id)
);

CREATE TABLE raw_files (
	id SERIAL NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	original_name TEXT NOT NULL,
	archived_path TEXT NOT NULL,
	size_bytes BIGINT NOT NULL,
	kind VARCHAR(32),
	status VARCHAR(32) NOT NULL,
	format VARCHAR(32),
	received_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (sha256)
);

CREATE TABLE rounds (
	round_id VARCHAR(32) NOT NULL,
	round_date DATE NOT NULL,
	status VARCHAR(16) NOT NULL,
	policy JSON NOT NULL,
	solver_stats JSON,
	input_checksums JSON,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	solved_at TIMESTAMP WITH TIME ZONE,
	offered_at TIMESTAMP WITH TIME ZONE,
	closed_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (round_id),
	UNIQUE (round_date)
);

CREATE TABLE capacity_offers (
	offer_id VARCHAR(64) NOT NULL,
	raw_file_id INTEGER NOT NULL,
	ags VARCHAR(8) NOT NULL,
	municipality_name TEXT NOT NULL,
	state VARCHAR(2) NOT NULL,
	settlement_type VARCHAR(16) NOT NULL,
	valid_from DATE NOT NULL,
	valid_until DATE NOT NULL,
	places_persons INTEGER NOT NULL,
	units_1_room INTEGER NOT NULL,
	units_2_rooms INTEGER NOT NULL,
	units_3_rooms INTEGER NOT NULL,
	units_4plus_rooms INTEGER NOT NULL,
	units_wheelchair INTEGER NOT NULL,
	units_pets_allowed INTEGER NOT NULL,
	kita_u3 INTEGER NOT NULL,
	kita_ue3 INTEGER NOT NULL,
	school_primary INTEGER NOT NULL,
	school_secondary INTEGER NOT NULL,
	language_course_seats INTEGER NOT NULL,
	medical_services VARCHAR(128) NOT NULL,
	job_sectors_shortage VARCHAR(256) NOT NULL,
	ukrainian_community VARCHAR(16) NOT NULL,
	contact_name TEXT,
	contact_email TEXT,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (offer_id),
	FOREIGN KEY(raw_file_id) REFERENCES raw_files (id)
);

CREATE TABLE decisions (
	id SERIAL NOT NULL,
	raw_file_id INTEGER,
	source VARCHAR(16) DEFAULT 'file' NOT NULL,
	case_id VARCHAR(64) NOT NULL,
	round_id VARCHAR(32) NOT NULL,
	decision VARCHAR(16) NOT NULL,
	decided_at VARCHAR(40) NOT NULL,
	reason TEXT,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_decisions_case_round UNIQUE (case_id, round_id),
	FOREIGN KEY(raw_file_id) REFERENCES raw_files (id)
);

CREATE TABLE deliveries (
	id SERIAL NOT NULL,
	document VARCHAR(16) NOT NULL,
	round_id VARCHAR(32) NOT NULL,
	recipient VARCHAR(64) NOT NULL,
	version INTEGER NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	channel VARCHAR(16) NOT NULL,
	status VARCHAR(16) NOT NULL,
	message_id VARCHAR(255),
	attempts INTEGER DEFAULT '1' NOT NULL,
	claimed_at TIMESTAMP WITH TIME ZONE NOT NULL,
	delivered_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (id),
	CONSTRAINT uq_deliveries_once UNIQUE (document, round_id, recipient, sha256, channel),
	FOREIGN KEY(round_id) REFERENCES rounds (round_id)
);

CREATE TABLE households (
	case_id VARCHAR(64) NOT NULL,
	pseudonym VARCHAR(32) NOT NULL,
	raw_file_id INTEGER NOT NULL,
	submission_time VARCHAR(40),
	interview_date DATE NOT NULL,
	interview_location TEXT,
	consent_matching BOOLEAN NOT NULL,
	consent_health_share BOOLEAN NOT NULL,
	contact_name TEXT,
	contact_phone TEXT,
	contact_email TEXT,
	languages VARCHAR(64) NOT NULL,
	german_level VARCHAR(16) NOT NULL,
	wheelchair_access BOOLEAN NOT NULL,
	medical_needs VARCHAR(128) NOT NULL,
	pets VARCHAR(16) NOT NULL,
	pref_settlement VARCHAR(16) NOT NULL,
	weight_work INTEGER NOT NULL,
	weight_education INTEGER NOT NULL,
	weight_community INTEGER NOT NULL,
	weight_healthcare INTEGER NOT NULL,
	weight_housing INTEGER NOT NULL,
	weight_culture INTEGER NOT NULL,
	ties_ags VARCHAR(8),
	notes TEXT,
	status VARCHAR(16) DEFAULT 'pool' NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	closed_at TIMESTAMP WITH TIME ZONE,
	purged_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (case_id),
	UNIQUE (pseudonym),
	FOREIGN KEY(raw_file_id) REFERENCES raw_files (id)
);

CREATE TABLE packets (
	round_id VARCHAR(32) NOT NULL,
	ags VARCHAR(8) NOT NULL,
	version INTEGER NOT NULL,
	html_path TEXT NOT NULL,
	pdf_path TEXT NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	final BOOLEAN DEFAULT false NOT NULL,
	PRIMARY KEY (round_id, ags, version),
	CONSTRAINT uq_packets_content UNIQUE (round_id, ags, sha256),
	FOREIGN KEY(round_id) REFERENCES rounds (round_id)
);

CREATE TABLE quarantine (
	id SERIAL NOT NULL,
	raw_file_id INTEGER,
	table_name VARCHAR(64) NOT NULL,
	sheet VARCHAR(128),
	source_row INTEGER,
	field VARCHAR(128),
	rule VARCHAR(128) NOT NULL,
	message TEXT NOT NULL,
	record JSON,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	resolved_at TIMESTAMP WITH TIME ZONE,
	resolved_by_raw_file_id INTEGER,
	superseded_by INTEGER,
	PRIMARY KEY (id),
	FOREIGN KEY(raw_file_id) REFERENCES raw_files (id),
	FOREIGN KEY(resolved_by_raw_file_id) REFERENCES raw_files (id),
	CONSTRAINT fk_quarantine_superseded_by FOREIGN KEY(superseded_by) REFERENCES quarantine (id)
);

CREATE TABLE round_inputs (
	round_id VARCHAR(32) NOT NULL,
	snapshot BYTEA NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	purged_cases INTEGER DEFAULT '0' NOT NULL,
	PRIMARY KEY (round_id),
	FOREIGN KEY(round_id) REFERENCES rounds (round_id)
);

CREATE TABLE validation_runs (
	id SERIAL NOT NULL,
	raw_file_id INTEGER NOT NULL,
	table_name VARCHAR(64) NOT NULL,
	success BOOLEAN NOT NULL,
	evaluated_rows INTEGER NOT NULL,
	invalid_rows INTEGER NOT NULL,
	report_path TEXT,
	statistics JSON,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(raw_file_id) REFERENCES raw_files (id)
);

CREATE TABLE assignments (
	round_id VARCHAR(32) NOT NULL,
	case_id VARCHAR(64) NOT NULL,
	ags VARCHAR(8) NOT NULL,
	offer_id VARCHAR(64) NOT NULL,
	persons INTEGER NOT NULL,
	score FLOAT NOT NULL,
	score_terms JSON NOT NULL,
	preference_rank INTEGER NOT NULL,
	PRIMARY KEY (round_id, case_id),
	FOREIGN KEY(round_id) REFERENCES rounds (round_id),
	FOREIGN KEY(case_id) REFERENCES households (case_id)
);

CREATE TABLE letters (
	round_id VARCHAR(32) NOT NULL,
	case_id VARCHAR(64) NOT NULL,
	version INTEGER NOT NULL,
	language VARCHAR(8) NOT NULL,
	html_path TEXT NOT NULL,
	pdf_path TEXT NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (round_id, case_id, version),
	CONSTRAINT uq_letters_content UNIQUE (round_id, case_id, sha256),
	FOREIGN KEY(round_id) REFERENCES rounds (round_id),
	FOREIGN KEY(case_id) REFERENCES households (case_id)
);

CREATE TABLE match_offers (
	round_id VARCHAR(32) NOT NULL,
	case_id VARCHAR(64) NOT NULL,
	ags VARCHAR(8) NOT NULL,
	offer_id VARCHAR(64) NOT NULL,
	persons INTEGER NOT NULL,
	demand JSON NOT NULL,
	respond_by DATE NOT NULL,
	status VARCHAR(16) NOT NULL,
	offered_at TIMESTAMP WITH TIME ZONE NOT NULL,
	resolved_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (round_id, case_id),
	FOREIGN KEY(round_id) REFERENCES rounds (round_id),
	FOREIGN KEY(case_id) REFERENCES households (case_id)
);

CREATE TABLE members (
	case_id VARCHAR(64) NOT NULL,
	member_no INTEGER NOT NULL,
	relation VARCHAR(16) NOT NULL,
	sex VARCHAR(16) NOT NULL,
	birth_year INTEGER NOT NULL,
	mobility_impaired BOOLEAN NOT NULL,
	occupation VARCHAR(32) NOT NULL,
	qualification VARCHAR(32) NOT NULL,
	PRIMARY KEY (case_id, member_no),
	FOREIGN KEY(case_id) REFERENCES households (case_id) ON DELETE CASCADE
);

CREATE TABLE unmatched (
	round_id VARCHAR(32) NOT NULL,
	case_id VARCHAR(64) NOT NULL,
	persons INTEGER NOT NULL,
	reason TEXT NOT NULL,
	reason_detail JSON,
	PRIMARY KEY (round_id, case_id),
	FOREIGN KEY(round_id) REFERENCES rounds (round_id),
	FOREIGN KEY(case_id) REFERENCES households (case_id)
);
