using System.Text.Json.Nodes;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>One number per run and target; reported as every run's value and the median.</summary>
internal sealed class MetricSeries(string unit, int decimals)
{
    private readonly Dictionary<string, List<double>> _runs = [];

    public string Unit => unit;

    public void Add(string target, double value)
    {
        if (!_runs.TryGetValue(target, out List<double>? list))
        {
            _runs[target] = list = [];
        }
        list.Add(value);
    }

    public double Median(string target) => _runs.TryGetValue(target, out List<double>? list) ? Stats.Median(list) : double.NaN;

    public JsonObject ToJson(IEnumerable<string> targets)
    {
        var runs = new JsonObject();
        var medians = new JsonObject();
        foreach (string t in targets)
        {
            runs[t] = new JsonArray([.. (_runs.GetValueOrDefault(t) ?? []).Select(v => (JsonNode?)JsonValue.Create(Math.Round(v, decimals)))]);
            double m = Median(t);
            medians[t] = double.IsNaN(m) ? null : Math.Round(m, decimals);
        }
        return new JsonObject { ["unit"] = unit, ["runs"] = runs, ["median"] = medians };
    }
}
