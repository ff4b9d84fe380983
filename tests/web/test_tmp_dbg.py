def test_dbg(login_as, targets, app):
    client = login_as("manager")
    r = client.post(f"/intakemodelview/delete/{targets['intake']}")
    sm = app.appbuilder.sm
    open("/tmp/dbg.txt", "w").write(f"{r.status_code} {r.headers.get('Location')} {sm.find_permission_view_menu('can_delete', 'IntakeModelView')} {r.get_data(as_text=True)[:300]}")
