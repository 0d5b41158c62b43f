-- Move or alter an envelope as a superuser going around the protection; the verdict of
-- audit_personal_data() on the entry, then undone.
CREATE FUNCTION public.moved(edit text, entry bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE res text;
BEGIN
  BEGIN
    ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
    EXECUTE edit;
    BEGIN
      PERFORM crm_security.audit_personal_data(entry);
      res := 'decrypted';
    EXCEPTION WHEN data_corrupted THEN
      res := 'refused';
    END;
    RAISE EXCEPTION 'undo';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  RETURN res;
END $$;
