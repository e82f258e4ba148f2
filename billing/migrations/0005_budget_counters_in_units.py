"""Budget counters and reservations in integer units of 1e-10 USD.

Counters are a cache of the generations in their window: the rows are dropped and seeded again from the
generations on first use. Reservations outstanding at the time of the migration are dropped with them
(their requests settle against freshly seeded counters)."""

from django.db import migrations, models


def drop_rows(apps, schema_editor):
    apps.get_model("billing", "BudgetReservation").objects.all().delete()
    apps.get_model("billing", "BudgetCounter").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_budget_counters_and_reservations")]

    operations = [
        migrations.RunPython(drop_rows, migrations.RunPython.noop),
        *[migrations.AlterField(model_name="budgetcounter", name=name, field=models.BigIntegerField(default=0))
          for name in ("spend", "spend_byok", "reserved", "reserved_byok")],
        *[migrations.AlterField(model_name="budgetreservation", name=name, field=models.BigIntegerField(default=0))
          for name in ("amount", "amount_byok")],
        migrations.AlterField(model_name="budgetreservation", name="counter_keys",
                              field=models.TextField(default="")),
    ]
