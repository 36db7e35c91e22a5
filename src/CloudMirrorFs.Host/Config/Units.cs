using System.Globalization;
using System.Text.RegularExpressions;

namespace CloudMirrorFs.Host.Config;

/// <summary>Sizes ("256KiB", "20GiB", "1.5MB", 4096) and durations ("30s", "5m", "250ms", 30) as the config file writes them.</summary>
public static partial class Units
{
    /// <summary>Parses a size in bytes; null when the text is not a size.</summary>
    public static long? ParseSize(string text)
    {
        Match m = SizePattern().Match(text.Trim());
        if (!m.Success || !double.TryParse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double n))
        {
            return null;
        }
        double factor = m.Groups[2].Value.ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KIB" => 1L << 10,
            "M" or "MIB" => 1L << 20,
            "G" or "GIB" => 1L << 30,
            "T" or "TIB" => 1L << 40,
            "KB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "TB" => 1e12,
            _ => double.NaN,
        };
        double bytes = n * factor;
        return double.IsNaN(bytes) || bytes < 0 || bytes > long.MaxValue ? null : (long)bytes;
    }

    /// <summary>Parses a duration; null when the text is not one. A bare number is seconds.</summary>
    public static TimeSpan? ParseDuration(string text)
    {
        Match m = DurationPattern().Match(text.Trim());
        if (!m.Success || !double.TryParse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double n) || n < 0)
        {
            return null;
        }
        return m.Groups[2].Value.ToLowerInvariant() switch
        {
            "ms" => TimeSpan.FromMilliseconds(n),
            "" or "s" => TimeSpan.FromSeconds(n),
            "m" or "min" => TimeSpan.FromMinutes(n),
            "h" => TimeSpan.FromHours(n),
            "d" => TimeSpan.FromDays(n),
            _ => null,
        };
    }

    /// <summary>Formats bytes for people: "256 KiB".</summary>
    public static string FormatSize(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        int i = 0;
        while (Math.Abs(v) >= 1024 && i < units.Length - 1)
        {
            v /= 1024;
            i++;
        }
        return i == 0 ? $"{bytes} B" : $"{v.ToString(v < 10 ? "0.##" : "0.#", CultureInfo.InvariantCulture)} {units[i]}";
    }

    [GeneratedRegex(@"^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$")]
    private static partial Regex SizePattern();

    [GeneratedRegex(@"^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$")]
    private static partial Regex DurationPattern();
}
