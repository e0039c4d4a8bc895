/** Words of the sample lecture, Spanish first. Real sentences, so OCR and STOI have something to measure. */
export type Lang = 'es' | 'en';
export type SegmentKind = 'title' | 'slide' | 'talking_head' | 'board' | 'motion' | 'summary';

interface Slide { heading: string; lines: string[]; footnote?: string }
interface Content {
  title: Slide;
  slides: Slide[];
  summary: Slide;
  board: { heading: string; lines: string[] };
  presenter: string;
  speech: Partial<Record<SegmentKind, string>>;
}

export const CONTENT: Record<Lang, Content> = {
  es: {
    title: { heading: 'El ciclo del agua', lines: ['Ciencias naturales - quinto grado'], footnote: 'Escuela rural de Yachay' },
    slides: [
      { heading: 'Evaporación', lines: ['El sol calienta el agua de los ríos', 'El vapor sube hacia el cielo', 'Las plantas también pierden agua'], footnote: 'Fuente: cuaderno de trabajo, página 42' },
      { heading: 'Condensación y lluvia', lines: ['El vapor se enfría y forma nubes', 'Las gotas crecen y caen como lluvia', 'En la sierra también cae granizo'], footnote: 'Actividad: dibuja una nube en tu cuaderno' },
    ],
    summary: { heading: 'Resumen', lines: ['Evaporación: el agua sube', 'Condensación: se forman nubes', 'Precipitación: el agua vuelve'], footnote: 'Tarea: observa el cielo mañana' },
    board: { heading: 'Ejemplo en la pizarra', lines: ['3 litros + 5 litros = 8 litros', '8 litros / 2 días = 4 litros', 'Respuesta: 4 litros cada día'] },
    presenter: 'Profesora Rosa Quispe',
    speech: {
      title: 'Hola a todos. Hoy vamos a aprender el ciclo del agua.',
      slide: 'El sol calienta el agua de los ríos y del mar. El vapor sube hacia el cielo.',
      talking_head: 'Miren por la ventana. ¿Ven las nubes? Allí está el agua que subió.',
      board: 'Ahora resolvemos un problema. Sumamos tres litros y cinco litros.',
      motion: 'Esta imagen se mueve sin parar, como el agua en la naturaleza.',
      summary: 'Recuerden: evaporación, condensación y precipitación. Hasta mañana.',
    },
  },
  en: {
    title: { heading: 'The water cycle', lines: ['Natural science - fifth grade'], footnote: 'Yachay rural school' },
    slides: [
      { heading: 'Evaporation', lines: ['The sun warms the water in rivers', 'Water vapour rises into the sky', 'Plants also give off water'], footnote: 'Source: workbook, page 42' },
      { heading: 'Condensation and rain', lines: ['Vapour cools down and forms clouds', 'Drops grow and fall as rain', 'In the mountains hail falls too'], footnote: 'Activity: draw a cloud in your notebook' },
    ],
    summary: { heading: 'Summary', lines: ['Evaporation: water rises', 'Condensation: clouds form', 'Precipitation: water comes back'], footnote: 'Homework: look at the sky tomorrow' },
    board: { heading: 'Example on the board', lines: ['3 litres + 5 litres = 8 litres', '8 litres / 2 days = 4 litres', 'Answer: 4 litres each day'] },
    presenter: 'Teacher Rosa Quispe',
    speech: {
      title: 'Hello everyone. Today we learn about the water cycle.',
      slide: 'The sun warms the water in rivers and in the sea. The vapour rises into the sky.',
      talking_head: 'Look out of the window. Do you see the clouds? That is the water that rose.',
      board: 'Now we solve a problem. We add three litres and five litres.',
      motion: 'This picture never stops moving, like water in nature.',
      summary: 'Remember: evaporation, condensation and precipitation. See you tomorrow.',
    },
  },
};
