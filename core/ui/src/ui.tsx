// Small pieces every page uses: a labelled text field and the error line.
export function Problem({ text }: { text: string }) {
  return text ? <p role="alert" class="error">{text}</p> : null;
}

export function Field({ id, label, value, onInput, type = 'text', required = false, placeholder = '' }: {
  id: string; label: string; value: string; onInput: (v: string) => void; type?: string; required?: boolean; placeholder?: string;
}) {
  return (
    <div>
      <label for={id}>{label}</label>
      <input id={id} type={type} required={required} placeholder={placeholder} value={value}
             onInput={(e) => onInput((e.target as HTMLInputElement).value)} />
    </div>
  );
}
