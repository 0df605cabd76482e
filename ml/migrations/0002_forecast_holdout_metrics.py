from django.db import migrations, models

OLD = ("mae", "wape", "mase", "naive_mae", "naive_wape", "naive_mase")
NEW = (*(f"holdout_{name}" for name in OLD), "holdout_coverage")


class Migration(migrations.Migration):
    dependencies = [
        ("ml", "0001_initial"),
    ]

    # The old figures were scored on the windows the model was chosen on, so they are dropped,
    # not renamed: old runs show no figure rather than a flattering one.
    operations = [
        *(migrations.RemoveField("productforecast", name) for name in OLD),
        *(
            migrations.AddField(
                "productforecast", name, models.FloatField(blank=True, null=True)
            )
            for name in NEW[:-1]
        ),
        migrations.AddField(
            "productforecast",
            "holdout_coverage",
            models.FloatField(
                blank=True,
                help_text="Share of held-out actuals inside the 80 % interval.",
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="segmentprofile",
            constraint=models.CheckConstraint(
                condition=models.Q(recency_days__gte=0), name="ml_profile_recency_not_negative"
            ),
        ),
    ]
