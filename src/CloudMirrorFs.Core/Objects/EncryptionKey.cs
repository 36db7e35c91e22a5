using System.Text.Json;

namespace CloudMirrorFs.Objects;

/// <summary>Reads a facet's <c>encryption</c> setting: <c>{ "keyFile": PATH }</c> or <c>{ "keyEnv": NAME }</c>. Messages never show key material.</summary>
public static class EncryptionKey
{
    /// <summary>
    /// The 32-byte key the setting names, or null when <paramref name="settingJson"/> is null. A key file holds 32 raw
    /// bytes, or 64 hex digits, or base64 of 32 bytes; a variable holds hex or base64.
    /// </summary>
    public static byte[]? Load(string? settingJson, string facetName)
    {
        if (settingJson is null)
        {
            return null;
        }
        string where = $"facet '{facetName}': encryption";
        JsonElement e;
        try
        {
            e = JsonDocument.Parse(settingJson).RootElement;
        }
        catch (JsonException)
        {
            throw new MirrorException(MirrorError.InvalidArgument, $"{where} must be {{ \"keyFile\": PATH }} or {{ \"keyEnv\": NAME }}");
        }
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("keyFile", out JsonElement file) && file.ValueKind == JsonValueKind.String)
        {
            string path = file.GetString()!;
            byte[] raw;
            try
            {
                raw = File.ReadAllBytes(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new MirrorException(MirrorError.NotFound, $"{where}.keyFile: cannot read {path} ({ex.GetType().Name}); create it with 'head -c 32 /dev/urandom > {path}' and keep a copy off this machine");
            }
            return raw.Length == 32 ? raw : Parse(System.Text.Encoding.ASCII.GetString(raw).Trim(), $"{where}.keyFile ({path})");
        }
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("keyEnv", out JsonElement env) && env.ValueKind == JsonValueKind.String)
        {
            string name = env.GetString()!;
            string? text = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrWhiteSpace(text))
            {
                throw new MirrorException(MirrorError.NotFound, $"{where}.keyEnv: environment variable {name} is not set");
            }
            return Parse(text.Trim(), $"{where}.keyEnv ({name})");
        }
        throw new MirrorException(MirrorError.InvalidArgument, $"{where} must be {{ \"keyFile\": PATH }} or {{ \"keyEnv\": NAME }}");
    }

    private static byte[] Parse(string text, string where)
    {
        if (text.Length == 64 && text.All(Uri.IsHexDigit))
        {
            return Convert.FromHexString(text);
        }
        try
        {
            byte[] b = Convert.FromBase64String(text);
            if (b.Length == 32)
            {
                return b;
            }
        }
        catch (FormatException)
        {
        }
        throw new MirrorException(MirrorError.InvalidArgument, $"{where}: the key must be 32 bytes: raw, 64 hex digits, or base64");
    }
}
