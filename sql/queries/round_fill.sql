-- Fill per municipality and round: persons placed against places offered (data team, auditors).
SELECT a.round_id,
       o.ags,
       o.municipality_name,
       COUNT(*)                    AS households_placed,
       SUM(a.persons)              AS persons_placed,
       o.places_persons,
       ROUND(CAST(SUM(a.persons) AS NUMERIC) / o.places_persons, 4) AS fill
FROM assignments a
JOIN capacity_offers o ON o.offer_id = a.offer_id
GROUP BY a.round_id, o.ags, o.municipality_name, o.places_persons
ORDER BY a.round_id, o.ags;
